import { defineConfig } from 'vitest/config';

// Three projects: pure unit tests on the host, integration tests against a real
// kube-apiserver + etcd, and end-to-end tests inside the two-VM soft-RoCE lab (including the
// two-node Kubernetes cluster of test/cluster).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            '{operator,sidecar,native}/**/*.test.ts',
            'test/unit/**/*.test.ts',
            'test/cluster/monitoring/*.test.ts',
          ],
          // The Prometheus test needs the real binaries (Prometheus, helm): it runs with the API-server tests.
          exclude: ['test/cluster/monitoring/*.host.test.ts', '**/node_modules/**'],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'apiserver',
          include: ['test/apiserver/**/*.test.ts', 'test/cluster/monitoring/*.host.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 900_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'vm',
          // The cluster tests boot the same two VMs: in this project they never run at the same
          // time as the other VM tests (two cores; and one --hostnet lab per machine).
          include: ['test/vm/**/*.test.ts', 'test/cluster/*.test.ts'],
          testTimeout: 1_800_000,
          hookTimeout: 1_800_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
