// Workgroup reductions shared by the vocabulary-wide kernels (sampling, log-probs). A fixed tree order:
// a row's result depends only on that row. Results come back through workgroupUniformLoad so callers
// may branch and loop on them (WGSL's uniformity rules).

export const REDUCE_WG = 256;

export const REDUCE_WGSL = /* wgsl */ `
var<workgroup> redF: array<f32, ${REDUCE_WG}>;
var<workgroup> redU: array<u32, ${REDUCE_WG}>;
var<workgroup> outF: f32;
var<workgroup> outU: u32;

fn reduceSum(li: u32, v: f32) -> f32 {
  redF[li] = v;
  workgroupBarrier();
  for (var s = ${REDUCE_WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) { redF[li] = redF[li] + redF[li + s]; }
    workgroupBarrier();
  }
  if (li == 0u) { outF = redF[0]; }
  return workgroupUniformLoad(&outF);
}

fn reduceMax(li: u32, v: f32) -> f32 {
  redF[li] = v;
  workgroupBarrier();
  for (var s = ${REDUCE_WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) { redF[li] = max(redF[li], redF[li + s]); }
    workgroupBarrier();
  }
  if (li == 0u) { outF = redF[0]; }
  return workgroupUniformLoad(&outF);
}

fn reduceCount(li: u32, v: u32) -> u32 {
  redU[li] = v;
  workgroupBarrier();
  for (var s = ${REDUCE_WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) { redU[li] = redU[li] + redU[li + s]; }
    workgroupBarrier();
  }
  if (li == 0u) { outU = redU[0]; }
  return workgroupUniformLoad(&outU);
}

// Index of the largest value; ties go to the smaller index.
fn reduceArgmax(li: u32, v: f32, idx: u32) -> u32 {
  redF[li] = v;
  redU[li] = idx;
  workgroupBarrier();
  for (var s = ${REDUCE_WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) {
      let a = redF[li]; let b = redF[li + s];
      if (b > a || (b == a && redU[li + s] < redU[li])) { redF[li] = b; redU[li] = redU[li + s]; }
    }
    workgroupBarrier();
  }
  if (li == 0u) { outU = redU[0]; }
  return workgroupUniformLoad(&outU);
}
`;

/**
 * (max, log-sum-exp) over a row of logits, `logits[base .. base + p.V)`, shared by the vocabulary-wide
 * kernels (log-probs, the LM-head loss, sampling). Include after REDUCE_WGSL in a shader that declares
 * `logits: array<f32>` and a uniform `p` with a `V` field.
 */
export const ROW_LOGSUMEXP_WGSL = /* wgsl */ `
fn rowMaxLogSumExp(li: u32, base: u32) -> vec2<f32> {
  var m = -3.0e38;
  for (var i = li; i < p.V; i += ${REDUCE_WG}u) { m = max(m, logits[base + i]); }
  let M = reduceMax(li, m);
  var s = 0.0;
  for (var i = li; i < p.V; i += ${REDUCE_WG}u) { s += exp(logits[base + i] - M); }
  return vec2<f32>(M, M + log(reduceSum(li, s)));
}
`;
