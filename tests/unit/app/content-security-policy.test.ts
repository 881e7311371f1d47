// The app's Content Security Policy: what it allows, and the message a mirror outside it gets.
import { describe, expect, it } from 'vitest';
import {
  contentSecurityPolicy,
  directiveSources,
  matchesSource,
  mirrorRefusal,
  mirrorSource,
} from '../../../src/app/lib/content-security-policy.ts';

const SELF = new URL('http://127.0.0.1:5173/');

describe('the Content Security Policy', () => {
  const policy = contentSecurityPolicy();

  it("allows scripts from the app's origin and WebAssembly, never eval or inline scripts", () => {
    expect(directiveSources(policy, 'script-src')).toEqual(["'self'", "'wasm-unsafe-eval'"]);
    expect(policy).not.toContain("'unsafe-eval'");
    expect(directiveSources(policy, 'style-src')).toContain("'self'");
    expect(directiveSources(policy, 'object-src')).toEqual(["'none'"]);
  });

  it('connects to its origin, the hub and its download hosts, this machine, and the named mirrors', () => {
    const allowed = (u: string, p = policy) =>
      directiveSources(p, 'connect-src').some((s) => matchesSource(new URL(u), s, SELF));
    for (const u of [
      'http://127.0.0.1:5173/models/x',
      'https://huggingface.co/Qwen/Qwen2-0.5B-Instruct/resolve/main/model.safetensors',
      'https://cdn-lfs.huggingface.co/repos/ab/cd',
      'https://cas-bridge.xethub.hf.co/xet-bridge-us/abc',
      'http://127.0.0.1:8080/api/models/x',
      'http://localhost:9000/x',
    ])
      expect(allowed(u), u).toBe(true);
    for (const u of [
      'https://evil.example/x',
      'http://huggingface.co/x',
      'https://hf.co.evil.example/',
      'http://192.168.1.10:8080/x',
    ])
      expect(allowed(u), u).toBe(false);
    const withMirror = contentSecurityPolicy(['http://192.168.1.10:8080/some/path']);
    expect(allowed('http://192.168.1.10:8080/api/models/x', withMirror)).toBe(true);
    expect(allowed('http://192.168.1.10:8081/x', withMirror)).toBe(false);
  });

  it('refuses a mirror that is not an http(s) URL, saying how to give one', () => {
    expect(mirrorSource('https://mirror.example:8443/hub/')).toBe('https://mirror.example:8443');
    expect(() => mirrorSource('mirror.example')).toThrow(/is not a URL: give it as https:\/\/host\[:port\]/);
    expect(() => mirrorSource('ftp://mirror.example')).toThrow(/must be an http or https URL/);
  });

  it('tells a person when the mirror they typed is outside the page policy, and what to do', () => {
    expect(mirrorRefusal('http://127.0.0.1:8080', policy, SELF)).toBeNull();
    expect(mirrorRefusal('http://192.168.1.10:8080', null, SELF)).toBeNull(); // no policy on the page
    expect(mirrorRefusal('http://192.168.1.10:8080/', policy, SELF)).toBe(
      "This page's Content Security Policy does not allow connections to http://192.168.1.10:8080, so the " +
        'browser would block every download from it. Start TabZero with `npm start -- --mirror=http://192.168.1.10:8080` ' +
        '(or add it to connect-src on your static host), then reload.',
    );
    expect(mirrorRefusal('192.168.1.10', policy, SELF)).toMatch(/is not a URL/);
  });
});
