// Public API of the experiments layer (browser-safe): run comparison, its curves, the SVG chart, text
// tables and sweep planning. Node-only parts (reading run folders, training) live in cli/commands.
export {
  compareRuns,
  configDifferences,
  loadRunData,
  normalisedArea,
  stepPositions,
  stepProposerReward,
  stepSolverAccuracy,
  stepValidRate,
  summariseEvals,
  summariseRun,
  typeSolverAccuracy,
  type Comparison,
  type ConfigDifference,
  type EvalSummary,
  type RunData,
  type RunOutcome,
  type XAxis,
} from './compare.ts';
export { comparisonCurves, xAxisLabel, type CurveSet, type Point } from './curves.ts';
export { escapeXml, renderComparisonSvg, RUN_COLORS } from './svg-plot.ts';
export { comparisonText, configDiffTable, renderTable, runsTable } from './table.ts';
export {
  parseVary,
  planSweep,
  runSweep,
  SweepError,
  variantStatus,
  type SweepDeps,
  type SweepSpec,
  type SweepTrainOptions,
  type SweepVariant,
  type VariantStatus,
  type VaryAxis,
} from './sweep.ts';
