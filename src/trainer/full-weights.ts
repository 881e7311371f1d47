// Fully fine-tuned weights as a Hugging Face folder: the engine trains full weights in its own packed
// layout (per layer one q|k|v matrix and bias, one gate|up matrix; the embedding in row chunks), and a
// full fine-tuning checkpoint stores them under those keys (`full.3.qkv`, engine-trainer.ts). This file
// maps them back to the official Qwen2 tensor names and writes config.json (torch_dtype float32), the
// base's generation config and tokenizer files byte for byte, and an f32 model.safetensors in the base's
// tensor order — the folder `tabzero pretrain` ships and `transformers` loads unchanged. Browser-safe.
import type { ByteSource } from '../model/byte-source.ts';
import { WEIGHTS_FILE } from '../model/model-folder.ts';
import type { FolderSink, ModelSource } from '../model/model-source.ts';
import { qwen2TensorShapes, type Qwen2Config } from '../model/qwen2-config.ts';
import { writeSafetensors } from '../model/safetensors-write.ts';
import { Sha256 } from '../model/sha256.ts';
import type { CheckpointTensor } from '../store/types.ts';
import { COPIED_FILES } from '../export/merged-model.ts';
import type { Engine } from '../engine/engine.ts';
import { FULL_PREFIX } from './engine-trainer.ts';

/** The HF tensors (name → f32 values) of a full fine-tuning checkpoint's parameters (moments ignored). */
export function hfTensorsFromFull(
  c: Qwen2Config,
  tensors: readonly CheckpointTensor[],
): Map<string, Float32Array> {
  const byKey = new Map(tensors.map((t) => [t.name, t.data]));
  const get = (key: string, n: number) => {
    const d = byKey.get(FULL_PREFIX + key);
    if (!d || d.length !== n)
      throw new Error(
        `the full fine-tuning checkpoint has no ${key} of ${n} values (found ${d?.length ?? 0})`,
      );
    return d;
  };
  const C = c.hiddenSize;
  const I = c.intermediateSize;
  const qRows = c.numAttentionHeads * c.headDim;
  const kvRows = c.numKeyValueHeads * c.headDim;
  const Q = qRows + 2 * kvRows;
  const out = new Map<string, Float32Array>();
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const p = `model.layers.${l}.`;
    const qkv = get(`${l}.qkv`, Q * C);
    const bias = get(`${l}.qkvBias`, Q);
    const gateUp = get(`${l}.gateUp`, 2 * I * C);
    out.set(`${p}input_layernorm.weight`, get(`${l}.inputNorm`, C));
    out.set(`${p}post_attention_layernorm.weight`, get(`${l}.postNorm`, C));
    out.set(`${p}self_attn.q_proj.weight`, qkv.subarray(0, qRows * C));
    out.set(`${p}self_attn.k_proj.weight`, qkv.subarray(qRows * C, (qRows + kvRows) * C));
    out.set(`${p}self_attn.v_proj.weight`, qkv.subarray((qRows + kvRows) * C, Q * C));
    out.set(`${p}self_attn.q_proj.bias`, bias.subarray(0, qRows));
    out.set(`${p}self_attn.k_proj.bias`, bias.subarray(qRows, qRows + kvRows));
    out.set(`${p}self_attn.v_proj.bias`, bias.subarray(qRows + kvRows, Q));
    out.set(`${p}self_attn.o_proj.weight`, get(`${l}.o`, C * C));
    out.set(`${p}mlp.gate_proj.weight`, gateUp.subarray(0, I * C));
    out.set(`${p}mlp.up_proj.weight`, gateUp.subarray(I * C));
    out.set(`${p}mlp.down_proj.weight`, get(`${l}.down`, C * I));
  }
  out.set('model.norm.weight', get('finalNorm', C));
  // The embedding's row chunks, in order.
  const embed = new Float32Array(c.vocabSize * C);
  let at = 0;
  for (let i = 0; byKey.has(`${FULL_PREFIX}embed${i}`); i++) {
    const d = byKey.get(`${FULL_PREFIX}embed${i}`)!;
    embed.set(d, at);
    at += d.length;
  }
  if (at !== embed.length)
    throw new Error(`the full fine-tuning checkpoint's embedding has ${at} values, not ${embed.length}`);
  out.set('model.embed_tokens.weight', embed);
  return out;
}

/**
 * Writes the trained model folder: the base folder's config (torch_dtype float32) and tokenizer files,
 * and the trained f32 weights in the official tensor order. Returns the weights' SHA-256.
 */
export async function writeFullModelFolder(
  base: ModelSource,
  config: Qwen2Config,
  tensors: readonly CheckpointTensor[],
  out: FolderSink,
  metadata: Record<string, string> = {},
): Promise<{ sha256: string; bytes: number }> {
  if (!config.tieWordEmbeddings) throw new Error('full fine-tuning supports tied embeddings only');
  const hf = hfTensorsFromFull(config, tensors);
  const configJson = JSON.parse(
    new TextDecoder().decode(await readBytes(await base.open('config.json'))),
  ) as object;
  await out.writeFile(
    'config.json',
    JSON.stringify({ ...configJson, torch_dtype: 'float32' }, null, 2) + '\n',
  );
  for (const name of COPIED_FILES) {
    const src = await base.open(name).catch(() => null);
    if (src) await out.writeFile(name, await readBytes(src));
  }
  const specs = qwen2TensorShapes(config).map((t) => ({
    name: t.name,
    shape: t.shape,
    dtype: 'F32' as const,
  }));
  const sink = await out.createFile(WEIGHTS_FILE);
  const hash = new Sha256();
  await writeSafetensors(
    {
      write: async (b: Uint8Array) => {
        hash.update(b);
        await sink.write(b);
      },
      close: () => sink.close(),
    },
    specs,
    (spec) => {
      const v = hf.get(spec.name)!;
      return [new Uint8Array(v.buffer, v.byteOffset, v.byteLength)];
    },
    { format: 'pt', ...metadata },
  );
  const bytes = hash.length;
  return { sha256: hash.hexDigest(), bytes };
}

async function readBytes(src: ByteSource): Promise<Uint8Array> {
  return src.read(0, src.size);
}

/** Puts a full fine-tuning checkpoint's weights into a loaded engine (eval and chat on the checkpoint). */
export function loadFullWeights(engine: Engine, tensors: readonly CheckpointTensor[]): void {
  engine.setLora(null);
  engine.loraEnabled = false;
  for (const [name, values] of hfTensorsFromFull(engine.config, tensors))
    engine.forward.weights.writeTensor(name, values);
}

/** Whether a checkpoint's engine state is a full fine-tuning one. */
export function isFullCheckpoint(state: unknown): boolean {
  return (state as { kind?: string } | null)?.kind === 'full';
}
