import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import { errorMessage } from './errors.js';
import type { KubeClient } from './kube/client.js';
import { Resources, resourcePath } from './kube/resources.js';
import { microTime } from './leader/lease.js';

export interface EventTarget {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace: string;
  readonly uid?: string | undefined;
}

/** Records events.k8s.io/v1 Events; failures are logged, never fatal. */
export class EventRecorder {
  constructor(
    private readonly client: KubeClient,
    private readonly controller: string,
    private readonly instance: string,
    private readonly log: Logger,
  ) {}

  async record(
    target: EventTarget,
    type: 'Normal' | 'Warning',
    reason: string,
    action: string,
    note: string,
  ): Promise<void> {
    const name = `${target.name}.${Date.now().toString(16)}${randomBytes(3).toString('hex')}`;
    try {
      await this.client.request('POST', resourcePath(Resources.events, target.namespace), z.unknown(), {
        body: {
          apiVersion: 'events.k8s.io/v1',
          kind: 'Event',
          metadata: { name, namespace: target.namespace },
          eventTime: microTime(new Date()),
          reportingController: this.controller,
          reportingInstance: this.instance,
          action,
          reason,
          type,
          note: note.slice(0, 1024),
          regarding: {
            apiVersion: target.apiVersion,
            kind: target.kind,
            name: target.name,
            namespace: target.namespace,
            uid: target.uid,
          },
        },
      });
    } catch (e) {
      this.log.warn({ err: errorMessage(e), reason }, 'recording an event failed');
    }
  }
}
