// The one version string of TabZero, from package.json: written into runs, archives, exports and `--version`.
// A named import, so the bundle keeps only this field of package.json (a default import carried all of it,
// dependency lists included, into the trainer worker); Vite and tsx both give JSON files named exports.
import { version } from '../package.json';

export const TABZERO_VERSION: string = version;
