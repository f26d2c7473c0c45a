// The SMC experimental TCP option (kind 254, ExID 0xE2D4C3D9) written by the sidecar's BPF
// sock_ops program (sidecar/bpf/) and read back from a kernel peer, against the kernel's SMC in
// the two lab VMs. One lab run (test/vm/smc-option/lab-node{0,1}.sh), three checks:
//   1. option written on the SYN-ACK: a kernel SMC client connecting to a plain listener in the
//      BPF cgroup sends a CLC Proposal (and falls back with PEERDECL after our Decline) instead
//      of falling back with PEERNOSMC as it does against the same listener without the program;
//      also when the first SYN-ACK is lost and the retransmission has no SYN to look at;
//   2. option recognised: TCP_SAVED_SYN of a kernel SMC client's connection carries the option,
//      a plain client's does not (parsed with the protocol library's findSmcTcpOption);
//   3. option written on the SYN: a kernel SMC server reached from a marked socket in the BPF
//      cgroup answers with the option and waits for CLC (our Decline makes it fall back with
//      PEERDECL), while an unmarked socket of the same cgroup, and the marked one after the
//      program is detached, get PEERNOSMC.
// See docs/smc-option.md.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  CLC_TYPE,
  decodeClcHeader,
  decodeClcProposal,
  encodeClcDecline,
  SMC_CLC_DECL,
} from '../../sidecar/src/protocol/index.js';
import { describeResult, type LabResult, labReady, removeRunDir, runLab } from './lab.js';
import {
  type Accept,
  type Connect,
  fallbackDelta,
  hex8,
  type LoaderStats,
  must,
  readJson,
  readLines,
  type ServerConn,
  SMC_OPTION_HEX,
  smcOption,
  type Sock,
  synOptions,
} from './smc-option/results.js';

const here = dirname(fileURLToPath(import.meta.url));
const PEERNOSMC = hex8(SMC_CLC_DECL.PEERNOSMC);
const PEERDECL = hex8(SMC_CLC_DECL.PEERDECL);
/** What the lab's stand-in for the sidecar declines with; shows up as the kernel's peer diagnosis. */
const OUR_DIAGNOSIS = SMC_CLC_DECL.MODEUNSUPP;
const MARK = 0x5100;

function build(script: string): string {
  try {
    return execFileSync(join(here, script), { encoding: 'utf8' }).trim();
  } catch (err) {
    console.warn(`[smc-option] ${script} failed: ${String(err)}`);
    return '';
  }
}
const ksmcDir = build('kernel-smc/build.sh');
const smcoDir = ksmcDir === '' ? '' : build('smc-option/build.sh');

describe.skipIf(!labReady() || ksmcDir === '' || smcoDir === '')(
  'SMC TCP option from a BPF sock_ops program, against kernel SMC in the lab',
  () => {
    let r: LabResult;
    let msg = '';
    let failed = false;

    beforeAll(async () => {
      const decline = encodeClcDecline({
        kind: 'decline',
        version: 1,
        eyecatcher: 'SMC-R',
        outOfSync: false,
        peerId: Buffer.from('0000525400770002', 'hex'),
        peerDiagnosis: OUR_DIAGNOSIS,
        osType: 0,
        diagnosisV2: null,
      });
      const script = (file: string): string =>
        `export KSMC_DIR='${ksmcDir}' SMCO_DIR='${smcoDir}' SMCO_DECLINE_HEX=${decline.toString('hex')}\n` +
        `. "$LAB_REPO/test/vm/smc-option/${file}"\n`;
      r = await runLab({
        name: 'smc-option',
        timeoutSec: 120,
        scripts: [script('lab-node0.sh'), script('lab-node1.sh')],
        extraModules: ['nf_tables', 'nft_quota'],
      });
      msg = describeResult(r);
      console.log(`[smc-option] lab wall ${r.wallSec.toFixed(1)} s`);
    });

    afterAll(() => {
      if (!failed) removeRunDir(r);
    });

    const check = (fn: () => void) => () => {
      try {
        expect(r.nodes[0].exitCode, msg).toBe(0);
        expect(r.nodes[1].exitCode, msg).toBe(0);
        fn();
      } catch (err) {
        failed = true;
        throw err;
      }
    };

    it(
      'writes the option on the SYN-ACK: a kernel SMC client sends a CLC Proposal instead of falling back with PEERNOSMC',
      check(() => {
        const [c, s] = r.nodes;
        const attach = readJson<{ loaded: boolean; config: { lports: number[] } }>(s.outDir, 'attach.json');
        expect([...attach.config.lports].sort()).toEqual([7100, 7102]);

        // Without the program (port 7101): the client falls back with PEERNOSMC before any CLC,
        // the listener receives the application bytes directly.
        const noBpf = fallbackDelta(
          readJson(c.outDir, 'stats-start.json'),
          readJson(c.outDir, 'stats-nobpf.json'),
        );
        expect(noBpf, msg).toEqual({ client: { [PEERNOSMC]: 1 }, server: {} });
        const [plainListener] = readLines<Accept>(s.outDir, 'conns-7101.jsonl');
        expect(plainListener?.clc, JSON.stringify(plainListener)).toBeNull();
        expect(plainListener?.app).toBe('app-nobpf-7101');
        expect(plainListener?.bpf).toEqual({ found: false });

        // With the program (port 7100): the listener receives a CLC Proposal first (eyecatcher
        // E2 D4 C3 D9, type 1), declines it, and the client falls back with PEERDECL instead.
        const [withBpf, plainClient] = readLines<Accept>(s.outDir, 'conns-7100.jsonl');
        expect(withBpf?.clc, JSON.stringify(withBpf)).not.toBeNull();
        const clc = Buffer.from(must(withBpf?.clc, 'CLC message at 7100').hex, 'hex');
        expect(clc.subarray(0, 4).toString('hex')).toBe('e2d4c3d9');
        expect(decodeClcHeader(clc).type).toBe(CLC_TYPE.proposal);
        const proposal = decodeClcProposal(clc);
        expect(proposal.version).toBe(2);
        if (proposal.version === 2) {
          const eids = proposal.v2Extension?.userEids.map((e) => e.toString('latin1').trim());
          expect(eids).toContain('KSMC-LAB');
        }
        expect(withBpf?.declined).toBe(true);
        expect(withBpf?.app).toBe('app-bpf-7100');
        expect(withBpf?.bpf, 'map entry of the accepted connection').toMatchObject({
          found: true,
          passive: true,
          local_sent: true,
          peer_seen: true,
          peer_sent: true,
        });
        const bpf = fallbackDelta(
          readJson(c.outDir, 'stats-nobpf.json'),
          readJson(c.outDir, 'stats-bpf.json'),
        );
        expect(bpf, msg).toEqual({ client: { [PEERDECL]: 1 }, server: {} });

        // Port 7102: nftables dropped the first SYN-ACK; the retransmitted one (no saved SYN on
        // that listener, so the program decided from its map entry) still carried the option.
        const nft = readJson<{ nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[] }>(
          s.outDir,
          'nft.json',
        );
        const dropped = nft.nftables.flatMap((x) => x.rule?.expr ?? []).find((e) => e.counter)?.counter;
        expect(dropped?.packets, JSON.stringify(nft)).toBe(1);
        const [rtx] = readLines<Accept>(s.outDir, 'conns-7102.jsonl');
        expect(rtx?.clc?.type, JSON.stringify(rtx)).toBe(CLC_TYPE.proposal);
        expect(rtx?.saved_syn).toBeNull();
        expect(rtx?.declined).toBe(true);
        expect(rtx?.app).toBe('app-rtx-7102');
        expect(rtx?.bpf).toMatchObject({ found: true, passive: true, local_sent: true, peer_sent: true });
        const rtxDelta = fallbackDelta(
          readJson(c.outDir, 'stats-bpf.json'),
          readJson(c.outDir, 'stats-rtx.json'),
        );
        expect(rtxDelta, msg).toEqual({ client: { [PEERDECL]: 1 }, server: {} });

        // A plain client of the same listener gets no option back (the SYN had none).
        expect(plainClient?.clc).toBeNull();
        expect(plainClient?.app).toBe('app-plain-7100');
        expect(plainClient?.bpf).toMatchObject({
          found: true,
          passive: true,
          local_sent: false,
          peer_sent: false,
        });
        const plain = fallbackDelta(
          readJson(c.outDir, 'stats-rtx.json'),
          readJson(c.outDir, 'stats-plain.json'),
        );
        expect(plain).toEqual({ client: {}, server: {} });

        const st = readJson<LoaderStats>(s.outDir, 'bpf-stats.json');
        // Listeners 7100 and 7102; SYN-ACKs with the option: 7100's, 7102's first (dropped) and
        // at least one retransmission; 7100's plain client got none.
        expect(st).toMatchObject({
          selected: 2,
          synack_plain: 1,
          peer_syn_opt: 2,
          syn_written: 0,
          write_err: 0,
        });
        expect(st.synack_written).toBeGreaterThanOrEqual(3);
        expect(st.synack_no_syn, 'retransmitted SYN-ACKs decided from the map').toBeGreaterThanOrEqual(1);
      }),
    );

    it(
      "recognises the option in a kernel SMC client's saved SYN, and its absence in a plain client's",
      check(() => {
        const s = r.nodes[1];
        const [kernelClient, ourSyn] = readLines<Accept>(s.outDir, 'conns-7101.jsonl');
        const [kernelClientBpf, plainClient] = readLines<Accept>(s.outDir, 'conns-7100.jsonl');
        // Kernel SMC client, to the listener without (7101) and with (7100) the program.
        for (const a of [kernelClient, kernelClientBpf]) {
          const opts = synOptions(a?.saved_syn);
          expect(smcOption(opts), opts.toString('hex')).toBe(SMC_OPTION_HEX);
          expect(a?.syn_smc_option).toBe(true);
        }
        const plainOpts = synOptions(plainClient?.saved_syn);
        expect(smcOption(plainOpts), plainOpts.toString('hex')).toBeNull();
        expect(plainClient?.syn_smc_option).toBe(false);

        // The SYN our own program wrote (node0, marked socket) as the listener saved it.
        expect(ourSyn?.remote.startsWith('10.77.0.1:')).toBe(true);
        const ours = synOptions(ourSyn?.saved_syn);
        expect(smcOption(ours), ours.toString('hex')).toBe(SMC_OPTION_HEX);
        expect(ourSyn?.app).toBe('app-syn-7101');
        console.log(
          `[smc-option] SYN options: kernel SMC client ${synOptions(kernelClient?.saved_syn).toString('hex')}, ` +
            `BPF ${ours.toString('hex')}, plain ${plainOpts.toString('hex')}`,
        );
      }),
    );

    it(
      'writes the option on the SYN of marked sockets: a kernel SMC server waits for CLC instead of falling back with PEERNOSMC',
      check(() => {
        const [c, s] = r.nodes;
        const attach = readJson<{ config: { mark: { value: string } | null } }>(c.outDir, 'attach.json');
        expect(attach.config.mark?.value).toBe(`0x${MARK.toString(16)}`);

        // Marked: the server's SYN-ACK answered with the option (the map says so), the probe
        // declined in CLC, and the server fell back with PEERDECL carrying our diagnosis.
        const marked = readJson<Connect>(c.outDir, 'probe-marked.json');
        expect(marked.bpf, JSON.stringify(marked)).toMatchObject({
          found: true,
          passive: false,
          local_sent: true,
          peer_seen: true,
          peer_sent: true,
        });
        expect(marked.declined).toBe(true);
        // Unmarked socket of the same cgroup: not selected, no map entry, no CLC.
        const unmarked = readJson<Connect>(c.outDir, 'probe-unmarked.json');
        expect(unmarked.bpf).toEqual({ found: false });
        expect(unmarked.declined).toBe(false);

        const conns = readLines<ServerConn>(s.outDir, 'server-conns.jsonl');
        const serverSock = (probe: Connect): Sock | undefined => {
          const port = probe.local.split(':').pop();
          const conn = conns.find((x) => String(x.peer_port) === port);
          return conn?.diag.sockets.find((x) => x.peer.endsWith(`:${String(port)}`) && x.state !== 'LISTEN');
        };
        const m = serverSock(marked);
        expect(m, JSON.stringify(conns)).toMatchObject({
          mode: 'TCP',
          fallback_reason: PEERDECL,
          peer_diagnosis: hex8(OUR_DIAGNOSIS),
        });
        const u = serverSock(unmarked);
        expect(u, JSON.stringify(conns)).toMatchObject({ mode: 'TCP', fallback_reason: PEERNOSMC });
        // After `detach`: the same marked socket gets no option, the server falls back with PEERNOSMC.
        expect(readJson<{ detached: boolean }>(c.outDir, 'detach.json').detached).toBe(true);
        expect(readJson<{ attached: boolean }>(c.outDir, 'status-detached.json').attached).toBe(false);
        const detached = readJson<Connect>(c.outDir, 'probe-detached.json');
        expect(detached.bpf).toEqual({ found: false });
        expect(detached.declined).toBe(false);
        expect(serverSock(detached), JSON.stringify(conns)).toMatchObject({
          mode: 'TCP',
          fallback_reason: PEERNOSMC,
        });
        expect(conns.map((x) => x.data).sort()).toEqual([
          'app-detached-7200',
          'app-marked-7200',
          'app-unmarked-7200',
        ]);

        const srv = fallbackDelta(
          readJson(s.outDir, 'stats-before.json'),
          readJson(s.outDir, 'stats-after.json'),
        );
        expect(srv, msg).toEqual({ client: {}, server: { [PEERDECL]: 1, [PEERNOSMC]: 2 } });

        // The program on node0: two selected connects (marked -> 7200 and -> 7101), both SYNs
        // written, one SYN-ACK with the option (the kernel SMC server), one without (7101).
        const st = readJson<LoaderStats>(c.outDir, 'bpf-stats.json');
        expect(st).toEqual({
          selected: 2,
          syn_written: 2,
          synack_written: 0,
          synack_plain: 0,
          peer_syn_opt: 0,
          peer_synack_opt: 1,
          peer_synack_plain: 1,
          write_err: 0,
          synack_no_syn: 0,
          skipped: 0,
        });
        const syn = readJson<Connect>(c.outDir, 'probe-syn.json');
        expect(syn.bpf).toMatchObject({ found: true, local_sent: true, peer_seen: true, peer_sent: false });
      }),
    );
  },
);
