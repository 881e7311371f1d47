// The one version string of TabZero, from package.json: written into runs, archives, exports and `--version`.
import pkg from '../package.json' with { type: 'json' };

export const TABZERO_VERSION: string = pkg.version;
