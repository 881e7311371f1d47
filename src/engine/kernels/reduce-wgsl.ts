// Workgroup reductions shared by the row-wise kernels (sampling, log-probs, the LM-head loss, RMSNorm).
// Every row reduces in a fixed order, so a row's result depends only on that row (batch invariance).
// Results come back through workgroupUniformLoad so callers may branch and loop on them (WGSL's
// uniformity rules).
//
// Two builds of the same helpers:
//  - portable: a workgroup-memory tree (log2(wg) barrier steps);
//  - `subgroups`: subgroupAdd / subgroupMax inside each subgroup, then one slot per subgroup in
//    workgroup memory, folded in subgroup order by invocation 0 (one barrier plus the uniform load).
//    Any subgroup size in [4, 128] works (the subgroup_size builtin; wg / 4 slots at most). Subgroups
//    are taken to hold consecutive local_invocation_index values (li / subgroup_size is a subgroup's
//    slot), as Vulkan, D3D12 and Metal lay out one-dimensional workgroups.
// Sums differ between the builds by rounding only; max, count and argmax are identical.
//
// Reference: none of its own (WGSL helpers): the kernels that use it are tested against theirs, on both
//   builds.
// Tests: tests/gpu/forward-kernels.test.ts (rmsnorm, gemv, log-prob and sampling, with and without
//   subgroups), tests/gpu/gemv-lora.test.ts, tests/gpu/backward-kernels.test.ts (LM-head loss).

export const REDUCE_WG = 256;

/** The smallest subgroup size WebGPU allows: bounds the per-subgroup slots a workgroup needs. */
export const MIN_SUBGROUP_SIZE = 4;

/**
 * Module-scope copies of the subgroup builtins: helper functions cannot read entry-point builtins.
 * Declare with `laneDecls`, add `laneParams` to the entry point's parameters and run `laneInit` first.
 */
export function laneDecls(subgroups: boolean): string {
  return subgroups ? 'var<private> sgSize: u32;\nvar<private> sgLane: u32;' : '';
}

export function laneParams(subgroups: boolean): string {
  return subgroups
    ? ', @builtin(subgroup_size) sgSizeIn: u32, @builtin(subgroup_invocation_id) sgLaneIn: u32'
    : '';
}

export function laneInit(subgroups: boolean): string {
  return subgroups ? 'sgSize = sgSizeIn; sgLane = sgLaneIn;' : '';
}

/** Subgroups in a workgroup of `wg` invocations (a subgroup may be wider than the workgroup). */
export function subgroupCount(wg: number): string {
  return `((${wg}u + sgSize - 1u) / sgSize)`;
}

/**
 * reduceSum / reduceMax / reduceCount / reduceArgmax over a workgroup of `wg` invocations
 * (`li` = local_invocation_index); the subgroup build needs `enable subgroups;` and the lane snippets.
 */
export function reduceWgsl(subgroups: boolean, wg = REDUCE_WG): string {
  return subgroups ? subgroupReduce(wg) : treeReduce(wg);
}

function treeReduce(wg: number): string {
  const tree = (combine: string) => /* wgsl */ `workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s >>= 1u) {
    if (li < s) { ${combine} }
    workgroupBarrier();
  }`;
  return /* wgsl */ `
var<workgroup> redF: array<f32, ${wg}>;
var<workgroup> redU: array<u32, ${wg}>;
var<workgroup> outF: f32;
var<workgroup> outU: u32;

fn reduceSum(li: u32, v: f32) -> f32 {
  redF[li] = v;
  ${tree('redF[li] = redF[li] + redF[li + s];')}
  if (li == 0u) { outF = redF[0]; }
  return workgroupUniformLoad(&outF);
}

fn reduceMax(li: u32, v: f32) -> f32 {
  redF[li] = v;
  ${tree('redF[li] = max(redF[li], redF[li + s]);')}
  if (li == 0u) { outF = redF[0]; }
  return workgroupUniformLoad(&outF);
}

fn reduceCount(li: u32, v: u32) -> u32 {
  redU[li] = v;
  ${tree('redU[li] = redU[li] + redU[li + s];')}
  if (li == 0u) { outU = redU[0]; }
  return workgroupUniformLoad(&outU);
}

// Index of the largest value; ties go to the smaller index.
fn reduceArgmax(li: u32, v: f32, idx: u32) -> u32 {
  redF[li] = v;
  redU[li] = idx;
  ${tree(`let a = redF[li]; let b = redF[li + s];
      if (b > a || (b == a && redU[li + s] < redU[li])) { redF[li] = b; redU[li] = redU[li + s]; }`)}
  if (li == 0u) { outU = redU[0]; }
  return workgroupUniformLoad(&outU);
}
`;
}

function subgroupReduce(wg: number): string {
  const slots = wg / MIN_SUBGROUP_SIZE;
  // Invocation 0 folds the per-subgroup slots in subgroup order; the uniform load is also the barrier
  // that keeps the next call's slot writes after these reads.
  const fold = (init: string, step: string, out: string) => /* wgsl */ `if (li == 0u) {
    ${init}
    for (var g = 1u; g < ${subgroupCount(wg)}; g++) { ${step} }
    ${out}
  }`;
  return /* wgsl */ `
${laneDecls(true)}
var<workgroup> redF: array<f32, ${slots}>;
var<workgroup> redU: array<u32, ${slots}>;
var<workgroup> outF: f32;
var<workgroup> outU: u32;

fn reduceSum(li: u32, v: f32) -> f32 {
  let s = subgroupAdd(v);
  if (sgLane == 0u) { redF[li / sgSize] = s; }
  workgroupBarrier();
  ${fold('var t = redF[0];', 't = t + redF[g];', 'outF = t;')}
  return workgroupUniformLoad(&outF);
}

fn reduceMax(li: u32, v: f32) -> f32 {
  let s = subgroupMax(v);
  if (sgLane == 0u) { redF[li / sgSize] = s; }
  workgroupBarrier();
  ${fold('var t = redF[0];', 't = max(t, redF[g]);', 'outF = t;')}
  return workgroupUniformLoad(&outF);
}

fn reduceCount(li: u32, v: u32) -> u32 {
  let s = subgroupAdd(v);
  if (sgLane == 0u) { redU[li / sgSize] = s; }
  workgroupBarrier();
  ${fold('var t = redU[0];', 't = t + redU[g];', 'outU = t;')}
  return workgroupUniformLoad(&outU);
}

// Index of the largest value; ties go to the smaller index.
fn reduceArgmax(li: u32, v: f32, idx: u32) -> u32 {
  let m = subgroupMax(v);
  let i = subgroupMin(select(0xffffffffu, idx, v == m));
  if (sgLane == 0u) { redF[li / sgSize] = m; redU[li / sgSize] = i; }
  workgroupBarrier();
  ${fold(
    'var bv = redF[0]; var bi = redU[0];',
    'let b = redF[g]; if (b > bv || (b == bv && redU[g] < bi)) { bv = b; bi = redU[g]; }',
    'outU = bi;',
  )}
  return workgroupUniformLoad(&outU);
}
`;
}

/**
 * (max, log-sum-exp) over a row of logits scaled by `scale` (1 / temperature; exactly the plain row at 1),
 * `scale · logits[base .. base + p.V)`, shared by the vocabulary-wide kernels (log-probs, the LM-head loss,
 * sampling). Include after reduceWgsl(…, REDUCE_WG) in a shader that
 * declares `logits: array<f32>` and a uniform `p` with a `V` field.
 */
export const ROW_LOGSUMEXP_WGSL = /* wgsl */ `
fn rowMaxLogSumExp(li: u32, base: u32, scale: f32) -> vec2<f32> {
  var m = -3.0e38;
  for (var i = li; i < p.V; i += ${REDUCE_WG}u) { m = max(m, scale * logits[base + i]); }
  let M = reduceMax(li, m);
  var s = 0.0;
  for (var i = li; i < p.V; i += ${REDUCE_WG}u) { s += exp(scale * logits[base + i] - M); }
  return vec2<f32>(M, M + log(reduceSum(li, s)));
}
`;
