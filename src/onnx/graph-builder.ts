// A small ONNX graph builder: appends nodes with generated, unique output names, deduplicates
// constants, and assembles the ModelProto. Browser-safe.

import { f32ToF16Bits } from '../model/dtype.ts';
import {
  attribute,
  inlineTensor,
  type AttrValue,
  type ElemType,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from './proto.ts';

/** Opset of the default ("ai.onnx") domain: Shape's start/end (15) and LessOrEqual (16) are used. */
export const ONNX_OPSET = 17;
/** IR version of onnx-proto's schema (onnx 1.10); onnxruntime reads it. */
export const ONNX_IR_VERSION = 8;

export interface OpOptions {
  /** Number of outputs (default 1). */
  outputs?: number;
  /** Use these output names instead of generated ones (graph outputs such as `present.0.key`). */
  names?: string[];
  domain?: string;
}

export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly inputs: ValueInfoProto[] = [];
  readonly outputs: ValueInfoProto[] = [];
  private readonly constants = new Map<string, string>();
  private counter = 0;
  private prefix = '';

  /** Names nodes and values created inside `fn` `${scope}/...` (readable graphs in Netron). */
  scoped<T>(scope: string, fn: () => T): T {
    const saved = this.prefix;
    this.prefix = `${saved}${scope}/`;
    try {
      return fn();
    } finally {
      this.prefix = saved;
    }
  }

  /** Appends one node; returns its output names. */
  ops(
    opType: string,
    inputs: readonly string[],
    attrs: Record<string, AttrValue> = {},
    opts: OpOptions = {},
  ): string[] {
    const id = `${this.prefix}${opType}_${this.counter++}`;
    const count = opts.names?.length ?? opts.outputs ?? 1;
    const outputs = opts.names ?? Array.from({ length: count }, (_, i) => `${id}/output_${i}`);
    this.nodes.push({
      name: id,
      opType,
      domain: opts.domain ?? '',
      input: [...inputs],
      output: outputs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outputs;
  }

  /** Appends a single-output node; returns its output name. */
  op(
    opType: string,
    inputs: readonly string[],
    attrs: Record<string, AttrValue> = {},
    name?: string,
  ): string {
    return this.ops(opType, inputs, attrs, name === undefined ? {} : { names: [name] })[0];
  }

  private constant(key: string, make: (name: string) => TensorProto): string {
    const known = this.constants.get(key);
    if (known) return known;
    const name = `const_${this.constants.size}`;
    this.initializers.push(make(name));
    this.constants.set(key, name);
    return name;
  }

  /** An int64 constant: a 1-D tensor of `values`, or a scalar when `scalar` is set. */
  int64(values: readonly number[], scalar = false): string {
    if (scalar && values.length !== 1) throw new Error('a scalar constant has one value');
    return this.constant(`i64:${scalar ? 's' : 'v'}:${values.join(',')}`, (name) =>
      inlineTensor(
        name,
        'int64',
        scalar ? [] : [values.length],
        new Uint8Array(BigInt64Array.from(values.map((v) => BigInt(v))).buffer),
      ),
    );
  }

  /** A float scalar constant in `elem`. */
  float(value: number, elem: ElemType): string {
    return this.constant(`${elem}:${value}`, (name) => {
      if (elem === 'float32')
        return inlineTensor(name, elem, [], new Uint8Array(Float32Array.of(value).buffer));
      if (elem === 'float16')
        return inlineTensor(name, elem, [], new Uint8Array(Uint16Array.of(f32ToF16Bits(value)).buffer));
      throw new Error(`float constant of type ${elem}`);
    });
  }

  /** A 1-D float32 constant (small tables such as RoPE's inverse frequencies). */
  float32Vector(key: string, values: Float32Array): string {
    return this.constant(`f32v:${key}`, (name) =>
      inlineTensor(name, 'float32', [values.length], new Uint8Array(values.slice().buffer)),
    );
  }

  model(graphName: string, producer: string, metadata: Record<string, string>): ModelProto {
    return {
      irVersion: ONNX_IR_VERSION,
      producerName: producer,
      opsetImport: [{ domain: '', version: ONNX_OPSET }],
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
      graph: {
        name: graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    };
  }
}
