// Makes sure the system packages the tests need are present (TESTING.md): Debian's Chromium and Mesa ≥ 25
// lavapipe (bookworm-backports; Dawn rejects bookworm's Mesa 22) for the gpu and e2e layers, and unzip
// (the unit tests check exported .zip files with `unzip -t`). Installs them when missing on
// Debian/Ubuntu as root; otherwise stops with one line saying what to do. No-op when present.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const LAVAPIPE_ICD = '/usr/share/vulkan/icd.d/lvp_icd.json';
const MIN_MESA_MAJOR = 25;

function chromiumPath() {
  return process.env.CHROME_PATH ?? '/usr/bin/chromium';
}

function mesaVulkanMajor() {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'mesa-vulkan-drivers'], { encoding: 'utf8' });
  if (r.status !== 0) return existsSync(LAVAPIPE_ICD) ? MIN_MESA_MAJOR : 0; // not a dpkg system: trust the ICD
  return Number.parseInt(r.stdout.replace(/^\d+:/, ''), 10) || 0;
}

/** What is missing; `gpu`: also what the gpu and e2e layers need (unit needs only unzip). */
export function missingDeps({ gpu = true } = {}) {
  const missing = [];
  if (!existsSync('/usr/bin/unzip')) missing.push('unzip');
  if (!gpu) return missing;
  if (!existsSync(chromiumPath())) missing.push('chromium');
  if (!existsSync(LAVAPIPE_ICD) || mesaVulkanMajor() < MIN_MESA_MAJOR)
    missing.push('mesa-vulkan-drivers>=25');
  if (
    !existsSync('/usr/lib/x86_64-linux-gnu/libEGL_mesa.so.0') &&
    !existsSync('/usr/lib/aarch64-linux-gnu/libEGL_mesa.so.0')
  ) {
    missing.push('libegl-mesa0');
  }
  return missing;
}

function run(cmd, args) {
  execFileSync(cmd, args, {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

function isDebianLike() {
  return existsSync('/etc/debian_version') && spawnSync('apt-get', ['--version']).status === 0;
}

export function ensureSystemDeps({ gpu = true } = {}) {
  const missing = missingDeps({ gpu });
  if (missing.length === 0) return;
  const isRoot = process.getuid?.() === 0;
  if (!isDebianLike() || !isRoot) {
    if (!gpu) {
      // The unit layer runs without unzip: its unzip checks are skipped (outside CI).
      console.warn('tabzero tests: no unzip, so the exported .zip checks are skipped (install unzip)');
      return;
    }
    console.error(
      `tabzero tests need ${missing.join(', ')}: run \`sudo npm test\` once on Debian/Ubuntu (it installs them), ` +
        'or install Chromium, Mesa ≥ 25 Vulkan drivers and unzip yourself (set CHROME_PATH for another Chromium).',
    );
    process.exit(1);
  }
  console.log(`Installing system packages for the tests: ${missing.join(', ')} (TESTING.md)…`);
  run('apt-get', ['update']);
  run(
    'apt-get',
    ['install', '-y', 'unzip'].concat(gpu ? ['chromium', 'libegl1', 'libegl-mesa0', 'libgl1-mesa-dri'] : []),
  );
  if (gpu && mesaVulkanMajor() < MIN_MESA_MAJOR) {
    const debianSources = '/etc/apt/sources.list.d/debian.sources';
    const backports = '/etc/apt/sources.list.d/backports.sources';
    if (!existsSync(backports) && existsSync(debianSources)) {
      // The first stanza of debian.sources, with its suite swapped for bookworm-backports.
      const first = readFileSync(debianSources, 'utf8').split(/\n\s*\n/)[0];
      writeFileSync(backports, first.replace(/^Suites:.*$/m, 'Suites: bookworm-backports') + '\n');
    }
    run('apt-get', ['update']);
    run('apt-get', ['install', '-y', '-t', 'bookworm-backports', 'mesa-vulkan-drivers']);
  }
  const still = missingDeps({ gpu });
  if (still.length > 0) {
    console.error(`tabzero tests: still missing after install: ${still.join(', ')}`);
    process.exit(1);
  }
}
