// The app's Content Security Policy: scripts only from its own origin (plus 'wasm-unsafe-eval', which
// onnxruntime-web's WebAssembly needs; never 'unsafe-eval'), no inline scripts, and connections only to
// its origin, the Hugging Face hub and the hosts the hub redirects downloads to, a mirror on this machine,
// and the mirrors `npm start -- --mirror=URL` names. The build puts it in index.html's <meta>; `npm start`
// sends the same as a header (workers take the header, not the meta). The page reads it back to tell a
// person when a mirror they typed is outside it.

/** The hub and the hosts its downloads redirect to (LFS and Xet storage). */
export const HUB_SOURCES = ['https://huggingface.co', 'https://*.huggingface.co', 'https://*.hf.co'] as const;
/** A mirror on this machine (any port): a classroom mirror on the teacher's laptop, the tests' fake hub. */
export const LOOPBACK_SOURCES = ['http://127.0.0.1:*', 'http://localhost:*'] as const;

/** A mirror's origin as CSP writes it; a clear error for anything that is not an http(s) URL. */
export function mirrorSource(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`--mirror ${url} is not a URL: give it as https://host[:port]`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    throw new Error(`--mirror ${url} must be an http or https URL, not ${u.protocol}`);
  return u.origin;
}

export function contentSecurityPolicy(mirrors: readonly string[] = []): string {
  const connect = ["'self'", ...HUB_SOURCES, ...LOOPBACK_SOURCES, ...mirrors.map(mirrorSource)];
  return [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "worker-src 'self'",
    // Svelte and uPlot set style attributes; styles cannot run code.
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    `connect-src ${[...new Set(connect)].join(' ')}`,
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
  ].join('; ');
}

/** The sources of one directive of a policy (empty when the policy lacks it). */
export function directiveSources(policy: string, directive: string): string[] {
  for (const part of policy.split(';')) {
    const [name, ...sources] = part.trim().split(/\s+/);
    if (name === directive) return sources;
  }
  return [];
}

/** Whether a URL matches a CSP source expression ('self', a scheme-host[:port] with * wildcards). */
export function matchesSource(url: URL, source: string, self: URL): boolean {
  if (source === "'self'") return url.origin === self.origin;
  const m = /^(https?):\/\/(\*\.)?([^:/]+)(?::(\*|\d+))?$/.exec(source);
  if (!m) return false;
  const [, scheme, wildcard, host, port] = m;
  if (url.protocol !== `${scheme}:`) return false;
  const hostOk = wildcard ? url.hostname.endsWith(`.${host}`) : url.hostname === host;
  const urlPort = url.port || (url.protocol === 'https:' ? '443' : '80');
  const portOk = port === '*' || (port ?? (scheme === 'https' ? '443' : '80')) === urlPort;
  return hostOk && portOk;
}

/**
 * Why the page's policy refuses connections to `endpoint` (a hub mirror), or null when it allows them.
 * `policy`: the page's <meta> policy (none: nothing to check).
 */
export function mirrorRefusal(endpoint: string, policy: string | null, self: URL): string | null {
  if (!policy) return null;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return `${endpoint} is not a URL: give the mirror as https://host[:port].`;
  }
  const sources = directiveSources(policy, 'connect-src');
  if (sources.some((s) => matchesSource(url, s, self))) return null;
  return (
    `This page's Content Security Policy does not allow connections to ${url.origin}, so the browser would ` +
    `block every download from it. Start TabZero with \`npm start -- --mirror=${url.origin}\` (or add it to ` +
    'connect-src on your static host), then reload.'
  );
}

/** The policy of this page's <meta> (null outside a built page, e.g. `vite dev`, or where none is set). */
export function pagePolicy(): string | null {
  if (typeof document === 'undefined') return null;
  return (
    document.querySelector('meta[http-equiv="Content-Security-Policy"]')?.getAttribute('content') ?? null
  );
}

/** One line for a blocked resource: what the policy refused, and which directive refused it. */
export function violationText(
  e: Pick<SecurityPolicyViolationEvent, 'blockedURI' | 'effectiveDirective'>,
): string {
  return `Content Security Policy violation: ${e.effectiveDirective} blocked ${e.blockedURI || 'an inline resource'}`;
}

/**
 * Reports every violation in this global (the page or a worker) on the console as an error and to
 * `notify`, so a blocked download or script is never silent (and the e2e test sees workers' too).
 */
export function reportViolations(scope: EventTarget, notify?: (text: string) => void): void {
  scope.addEventListener('securitypolicyviolation', (e) => {
    const text = violationText(e as SecurityPolicyViolationEvent);
    console.error(text);
    notify?.(text);
  });
}
