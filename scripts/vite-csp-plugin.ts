// A vite plugin that puts the app's Content Security Policy (src/app/lib/content-security-policy.ts) into
// the built index.html as a <meta>, and sends it as a header from `vite preview` (so from `npm start`)
// for every response: workers take the policy from their script's header, not from the page's meta.
// TABZERO_MIRRORS (comma-separated, set by `npm start -- --mirror=URL`) adds mirrors to connect-src.
import type { Plugin } from 'vite';
import { contentSecurityPolicy } from '../src/app/lib/content-security-policy.ts';

export function mirrorsFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.TABZERO_MIRRORS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function cspPlugins(mirrors: readonly string[]): Plugin[] {
  const policy = contentSecurityPolicy(mirrors);
  return [
    {
      name: 'tabzero-csp-meta',
      apply: 'build',
      transformIndexHtml: () => [
        {
          tag: 'meta',
          attrs: { 'http-equiv': 'Content-Security-Policy', content: policy },
          injectTo: 'head-prepend',
        },
      ],
    },
    {
      name: 'tabzero-csp-header',
      configurePreviewServer(server) {
        server.middlewares.use((_req, res, next) => {
          res.setHeader('Content-Security-Policy', policy);
          next();
        });
      },
    },
  ];
}
