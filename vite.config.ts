import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import basicSsl from '@vitejs/plugin-basic-ssl';
import { ortWasmPlugin } from './scripts/vite-ort-plugin.ts';
import { cspPlugins, mirrorsFromEnv } from './scripts/vite-csp-plugin.ts';

// TABZERO_LAN=1 (set by `npm start -- --lan`) serves over HTTPS with a self-signed certificate, because
// WebGPU needs a secure context and classroom machines reach the app by IP address, not localhost.
const lan = process.env.TABZERO_LAN === '1';

export default defineConfig({
  plugins: [
    svelte(),
    ortWasmPlugin(),
    ...cspPlugins(mirrorsFromEnv()),
    ...(lan ? [basicSsl({ name: 'tabzero-lan' })] : []),
  ],
  worker: { format: 'es' },
  build: { target: 'es2022', sourcemap: true },
  server: { host: '127.0.0.1', port: 5173 },
  preview: { host: '127.0.0.1', port: 5173 },
});
