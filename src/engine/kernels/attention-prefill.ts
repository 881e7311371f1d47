// Causal GQA attention for prefill, teacher-forced log-probs and the training forward (many query rows
// per pass). For now this is the decode kernel itself (attention-decode.ts: one workgroup per (query head,
// row), keys 64 at a time with an online softmax), under its own name so the prefill/training path and
// the decode path can evolve separately; results are identical to the decode kernel's.
// Backward: attention-backward.ts.
//
// Reference: attention (src/engine/reference/ops.ts).
// Tests: tests/gpu/forward-kernels.test.ts (rope + KV cache + attention); in the whole model
//   tests/gpu/qwen2-forward.test.ts, tests/gpu/train-grads.test.ts.
import { DecodeAttentionKernel } from './attention-decode.ts';

export type { AttentionArgs } from './attention-decode.ts';

export class PrefillAttentionKernel extends DecodeAttentionKernel {}
