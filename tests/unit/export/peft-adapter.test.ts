import { describe, expect, it } from 'vitest';
import { loadPeftLora } from '../../../src/model/lora.ts';
import { qwen2Logits } from '../../../src/engine/reference/qwen2.ts';
import { parseManifest } from '../../../src/export/manifest.ts';
import { exportMergedModel } from '../../../src/export/merged-model.ts';
import { adapterConfigJson, exportPeftAdapter } from '../../../src/export/peft-adapter.ts';
import { bytesSource } from '../../../src/model/byte-source.ts';
import { loadModelFolder } from '../../../src/model/model-folder.ts';
import { memoryFolder } from '../../../src/model/model-source.ts';
import { openSafetensors } from '../../../src/model/safetensors-read.ts';
import {
  loraRunConfig,
  maxAbsDiff,
  PROMPTS,
  provenance,
  randomAdapter,
  refWeights,
  text,
  tinyBase,
} from './fixtures.ts';

describe('exportPeftAdapter', () => {
  it('writes PEFT names, shapes and f32 with "pt" metadata, and round-trips through loadPeftLora', async () => {
    const config = {
      ...loraRunConfig(),
      loraTargets: ['q_proj' as const, 'v_proj' as const, 'down_proj' as const],
    };
    const { model } = await tinyBase('BF16');
    const lora = randomAdapter(model, config);
    const out = memoryFolder('adapter');
    const result = await exportPeftAdapter(
      lora,
      { provenance: provenance(model, config), model: model.config },
      out,
    );
    expect(result.files).toEqual(['adapter_model.safetensors', 'adapter_config.json', 'tabzero.json']);
    expect(result.tensorCount).toBe(2 * 3 * model.config.numHiddenLayers);

    const bytes = out.files.get('adapter_model.safetensors')!;
    expect(result.adapterBytes).toBe(bytes.byteLength);
    const st = await openSafetensors(bytesSource(bytes), 'adapter');
    expect(st.metadata).toEqual({ format: 'pt' });
    const C = model.config.hiddenSize;
    const kv = model.config.numKeyValueHeads * model.config.headDim;
    const byName = Object.fromEntries(st.tensors.map((t) => [t.name, t]));
    expect(byName['base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight']).toMatchObject({
      dtype: 'F32',
      shape: [4, C],
    });
    expect(byName['base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight']).toMatchObject({
      dtype: 'F32',
      shape: [C, 4],
    });
    expect(byName['base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight'].shape).toEqual([kv, 4]);
    expect(byName['base_model.model.model.layers.0.mlp.down_proj.lora_A.weight'].shape).toEqual([
      4,
      model.config.intermediateSize,
    ]);

    const back = await loadPeftLora(bytes, config.loraAlpha, model.config);
    expect(Object.keys(back).sort()).toEqual(Object.keys(lora).sort());
    for (const [m, p] of Object.entries(lora)) {
      expect(back[m].A, m).toEqual(Float32Array.from(p.A));
      expect(back[m].B, m).toEqual(Float32Array.from(p.B));
      expect(back[m].scale).toBe(p.scale);
    }
  });

  it("adapter_config.json has PEFT's keys and the run's r, alpha and targets", async () => {
    const config = { ...loraRunConfig(), loraTargets: ['v_proj' as const, 'q_proj' as const] };
    const { model } = await tinyBase('F32');
    const out = memoryFolder('adapter');
    const prov = {
      ...provenance(model, config),
      base: { repo: 'Qwen/Qwen2-0.5B-Instruct', revision: 'abc123', sha256: model.identity.sha256 },
    };
    await exportPeftAdapter(randomAdapter(model, config), { provenance: prov, model: model.config }, out);
    expect(JSON.parse(text(out.files.get('adapter_config.json')!))).toEqual({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: 'Qwen/Qwen2-0.5B-Instruct',
      revision: 'abc123',
      r: 4,
      lora_alpha: 8,
      lora_dropout: 0,
      target_modules: ['q_proj', 'v_proj'],
      bias: 'none',
      fan_in_fan_out: false,
      inference_mode: true,
      init_lora_weights: true,
      modules_to_save: null,
      layers_to_transform: null,
      layers_pattern: null,
      rank_pattern: {},
      alpha_pattern: {},
      use_rslora: false,
    });
    const manifest = parseManifest(text(out.files.get('tabzero.json')!));
    expect(manifest.kind).toBe('peft-adapter');
    expect(manifest.baseModel.revision).toBe('abc123');
    expect(manifest.lora).toEqual({ rank: 4, alpha: 8, targets: ['v_proj', 'q_proj'] });
    expect(manifest.files).toEqual(['adapter_model.safetensors', 'adapter_config.json']);
    // A local base: no hub revision; the caller names the folder AutoPeftModel should load.
    expect(
      adapterConfigJson({
        rank: 2,
        alpha: 4,
        targets: ['up_proj'],
        baseModelNameOrPath: '/models/tiny',
        revision: null,
      }),
    ).toMatchObject({
      base_model_name_or_path: '/models/tiny',
      revision: null,
    });
  });

  it('the adapter applied to the base equals the merged model (reference forward)', async () => {
    const config = loraRunConfig();
    const { folder, model } = await tinyBase('F32');
    const lora = randomAdapter(model, config);
    const adapterDir = memoryFolder('adapter');
    await exportPeftAdapter(lora, { provenance: provenance(model, config), model: model.config }, adapterDir);
    const reloaded = await loadPeftLora(
      adapterDir.files.get('adapter_model.safetensors')!,
      config.loraAlpha,
      model.config,
    );
    const mergedDir = memoryFolder('merged');
    await exportMergedModel(folder, lora, { dtype: 'f32', provenance: provenance(model, config) }, mergedDir);
    const merged = await loadModelFolder(mergedDir);
    const viaAdapter = qwen2Logits(model.config, await refWeights(model), PROMPTS, reloaded).logits;
    const viaMerged = qwen2Logits(merged.config, await refWeights(merged), PROMPTS).logits;
    expect(maxAbsDiff(viaAdapter, viaMerged)).toBeLessThan(1e-5);
  });

  it('refuses adapters that PEFT would load differently from how they were trained', async () => {
    const config = loraRunConfig();
    const { model } = await tinyBase('F32');
    const lora = randomAdapter(model, config);
    const opts = { provenance: provenance(model, config), model: model.config };
    const { ['model.layers.1.mlp.up_proj']: _dropped, ...partial } = lora;
    await expect(exportPeftAdapter(partial, opts, memoryFolder())).rejects.toThrow(
      /missing model.layers.1.mlp.up_proj/,
    );
    const otherAlpha = { ...opts, provenance: provenance(model, { ...config, loraAlpha: 16 }) };
    await expect(exportPeftAdapter(lora, otherAlpha, memoryFolder())).rejects.toThrow(/scale/);
    const full = { ...opts, provenance: provenance(model, { ...config, fineTune: 'full' }) };
    await expect(exportPeftAdapter(lora, full, memoryFolder())).rejects.toThrow(/fineTune = full/);
    const fewerTargets = { ...opts, provenance: provenance(model, { ...config, loraTargets: ['q_proj'] }) };
    await expect(exportPeftAdapter(lora, fewerTargets, memoryFolder())).rejects.toThrow(/unexpected/);
  });
});
