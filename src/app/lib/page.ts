// What the page's URL asks for, besides the shared config in the hash.

/** `?compat=1` asks the worker for a WebGPU compatibility-mode device (GL / D3D11 backends). */
export function wantsCompat(search: string): boolean {
  return new URLSearchParams(search).get('compat') === '1';
}
