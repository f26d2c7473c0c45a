import { spawn } from 'node:child_process';

export class NftError extends Error {
  constructor(
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly script: string,
  ) {
    super(`nft -f - failed (exit ${exitCode ?? 'signal'}): ${stderr.trim()}`);
    this.name = 'NftError';
  }
}

/** Runs `nft -f -` with a script on stdin. Injectable so rule application is testable without root. */
export type NftRunner = (script: string) => Promise<void>;

export function nftCommandRunner(binary = 'nft'): NftRunner {
  return (script) =>
    new Promise((resolve, reject) => {
      const child = spawn(binary, ['-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (d: string) => (stderr += d));
      child.on('error', (err) => reject(new NftError(null, err.message, script)));
      child.on('close', (code) => (code === 0 ? resolve() : reject(new NftError(code, stderr, script))));
      child.stdin.end(script);
    });
}
