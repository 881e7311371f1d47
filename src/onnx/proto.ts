// The ONNX protobuf schema (onnx-proto: the official onnx.proto compiled by protobufjs) and the few
// message constructors the exporter needs. onnx-proto is CommonJS with a single `onnx` namespace on
// module.exports, hence the default import. Browser-safe.

import onnxProto from 'onnx-proto';

export const onnx = onnxProto.onnx;
export type ModelProto = onnxProto.onnx.IModelProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type ValueInfoProto = onnxProto.onnx.IValueInfoProto;
export type AttributeProto = onnxProto.onnx.IAttributeProto;

export const DataType = onnx.TensorProto.DataType;
/** Element types the exporter writes. */
export type ElemType = 'float32' | 'float16' | 'int64' | 'bool';

export const ELEM_DATA_TYPE: Readonly<Record<ElemType, number>> = {
  float32: DataType.FLOAT,
  float16: DataType.FLOAT16,
  int64: DataType.INT64,
  bool: DataType.BOOL,
};

/** One dimension of a graph input/output: a fixed size or a symbolic name ("batch_size"). */
export type Dim = number | string;

export function valueInfo(name: string, elem: ElemType, dims: readonly Dim[]): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM_DATA_TYPE[elem],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export type AttrValue = number | number[] | string | { float: number } | { tensor: TensorProto };

/** Attributes by name: integers as numbers (INT / INTS), `{ float }` for FLOAT, strings as STRING. */
export function attribute(name: string, value: AttrValue): AttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error(`attribute ${name}: ${value} is not an integer`);
    return { name, type: T.INT, i: value };
  }
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if ('float' in value) return { name, type: T.FLOAT, f: value.float };
  return { name, type: T.TENSOR, t: value.tensor };
}

/** A small tensor whose bytes live inside the model file (constants: shapes, axes, scalars). */
export function inlineTensor(
  name: string,
  elem: ElemType,
  dims: readonly number[],
  bytes: Uint8Array,
): TensorProto {
  return { name, dataType: ELEM_DATA_TYPE[elem], dims: [...dims], rawData: bytes };
}

/** A tensor whose bytes live at `offset` in the external data file `location` (beside the model). */
export function externalTensor(
  name: string,
  elem: ElemType,
  dims: readonly number[],
  location: string,
  offset: number,
  length: number,
): TensorProto {
  return {
    name,
    dataType: ELEM_DATA_TYPE[elem],
    dims: [...dims],
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(length) },
    ],
  };
}

export function encodeModel(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

export function decodeModel(bytes: Uint8Array): onnxProto.onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}
