/**
 * The status bus in this process: its three ways in (a publication here, a change relayed from
 * another cluster worker, a change found by polling) reach each subscriber once, with its
 * origin; a worker's own change is not echoed back to it; the CRL publisher's subscription
 * keeps today's rule (changes made on this host schedule a CRL, polled ones do not).
 *
 * The cluster is three buses joined by the real relay functions (runtime/cluster-relay.ts) over
 * in-memory channels that copy each message and deliver it on a later turn, as IPC does.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { StatusBus, StatusPoller, type StatusChange, type StatusDelivery } from '../src/ca/status-bus.js';
import { connectWorkerRelay, relayStatus, type RelayPeer, type WorkerChannel } from '../src/runtime/cluster-relay.js';
import { CrlPublisher } from '../src/ca/crl-publisher.js';
import type { CaContext } from '../src/ca/context.js';

const log = pino({ level: 'silent' });
/** Lets IPC-like deliveries (setImmediate) and the handlers they start run. */
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

/** What one bus's subscriber heard. */
function listen(bus: StatusBus): StatusDelivery[] {
  const heard: StatusDelivery[] = [];
  bus.subscribe((d) => {
    heard.push(d);
  });
  return heard;
}

/** n workers, each with its own bus, joined through a primary that uses relayStatus. */
function cluster(n: number) {
  const workers = new Map<number, RelayPeer>();
  const toPrimary: unknown[] = [];
  const buses = Array.from({ length: n }, (_, index) => {
    const listeners = new Set<(m: unknown) => void>();
    const channel: WorkerChannel = {
      send: (m) => {
        const copy = structuredClone(m);
        toPrimary.push(copy);
        setImmediate(() => relayStatus(copy, index, workers));
        return true;
      },
      on: (_e, l) => listeners.add(l),
      off: (_e, l) => listeners.delete(l),
    };
    workers.set(index, {
      isConnected: () => true,
      send: (m) => {
        const copy = structuredClone(m);
        setImmediate(() => {
          for (const l of listeners) l(copy);
        });
        return true;
      },
    });
    const bus = new StatusBus(log);
    return { bus, heard: listen(bus), detach: connectWorkerRelay(bus, log, channel) };
  });
  return { buses, toPrimary };
}

describe('the status bus', () => {
  const revoked: StatusChange = { kind: 'certificate', caId: 'ca-1', serial: '0a0b' };
  const caRevoked: StatusChange = { kind: 'ca', caId: 'ca-2' };

  test("in one process: a publication reaches every subscriber once, as this process's", () => {
    const bus = new StatusBus(log);
    const a = listen(bus);
    const b = listen(bus);
    bus.publish(revoked);
    assert.deepEqual(a, [{ origin: 'process', change: revoked }]);
    assert.deepEqual(b, [{ origin: 'process', change: revoked }]);
  });

  test('a failing subscriber neither fails the publisher nor keeps the others from hearing', async () => {
    const bus = new StatusBus(log);
    bus.subscribe(() => {
      throw new Error('boom');
    });
    bus.subscribe(async () => {
      throw new Error('boom');
    });
    const heard = listen(bus);
    bus.publish(revoked);
    await settle();
    assert.equal(heard.length, 1);
  });

  test("across workers: the others hear each change once, as a worker's; the publisher is not echoed", async () => {
    const { buses, toPrimary } = cluster(3);
    buses[0]!.bus.publish(revoked);
    buses[2]!.bus.publish(caRevoked);
    await settle();
    assert.deepEqual(buses[0]!.heard, [
      { origin: 'process', change: revoked },
      { origin: 'worker', change: caRevoked },
    ]);
    assert.deepEqual(buses[1]!.heard, [
      { origin: 'worker', change: revoked },
      { origin: 'worker', change: caRevoked },
    ]);
    // Worker 3 published before worker 1's change reached it.
    assert.deepEqual(buses[2]!.heard, [
      { origin: 'process', change: caRevoked },
      { origin: 'worker', change: revoked },
    ]);
    assert.equal(toPrimary.length, 2, 'a relayed change is not sent on again');
  });

  test('the relay ignores other messages and detaches', async () => {
    const { buses } = cluster(2);
    assert.equal(relayStatus({ type: 'listening' }, 0, new Map()), false, "the primary's own messages are left to it");
    assert.equal(relayStatus({ type: 'status', change: { kind: 'certificate', caId: 'x' } }, 0, new Map()), false, 'a malformed change is not relayed');
    buses[1]!.detach();
    buses[0]!.bus.publish(revoked);
    buses[1]!.bus.publish(caRevoked);
    await settle();
    assert.deepEqual(buses[1]!.heard, [{ origin: 'process', change: caRevoked }]);
    assert.deepEqual(buses[0]!.heard, [{ origin: 'process', change: revoked }]);
  });

  test("by polling: each changed serial once, as a replica's, one at a time; the window moves on with an overlap", async () => {
    let clock = 1_000_000;
    const asked: Date[] = [];
    let answer = ['01', '02'];
    const bus = new StatusBus(log);
    const heard = listen(bus);
    let running = 0;
    let most = 0;
    bus.subscribe(async () => {
      running++;
      most = Math.max(most, running);
      await settle();
      running--;
    });
    const poller = new StatusPoller({
      source: {
        statusChangedSince: async (since) => {
          asked.push(since);
          return answer;
        },
      },
      bus,
      pollMs: 60_000,
      now: () => new Date(clock),
      log,
    });
    clock += 5_000;
    await poller.poll();
    assert.deepEqual(
      heard,
      ['01', '02'].map((serial) => ({ origin: 'replica', change: { kind: 'certificate', serial } })),
    );
    assert.equal(most, 1, "the poller waits for each change's subscribers");
    answer = [];
    clock += 5_000;
    await poller.poll();
    assert.deepEqual(
      asked.map((d) => d.getTime()),
      [1_000_000 - 2_000, 1_005_000 - 2_000],
    );
    assert.equal(heard.length, 2);
  });

  test('a subscriber failing on a polled change ends that poll', async () => {
    const bus = new StatusBus(log);
    const heard = listen(bus);
    bus.subscribe((d) => {
      if (d.change.kind === 'certificate' && d.change.serial === '02') throw new Error('re-sign failed');
    });
    const poller = new StatusPoller({ source: { statusChangedSince: async () => ['01', '02', '03'] }, bus, pollMs: 60_000, now: () => new Date(), log });
    await assert.rejects(poller.poll(), /re-sign failed/);
    assert.deepEqual(
      heard.map((d) => (d.change.kind === 'certificate' ? d.change.serial : d.change.caId)),
      ['01', '02'],
    );
  });
});

describe('the CRL publisher on the bus', () => {
  /** The publisher's subscription, with its database work (refreshDue) and the timer's publication left out. */
  class Recording extends CrlPublisher {
    readonly scheduled: string[] = [];
    override async refreshDue(): Promise<void> {}
    override schedule(caId: string, shard = 0): void {
      this.scheduled.push(shard ? `${caId}.s${shard}` : caId);
    }
  }
  // The one store read the subscription makes: which CRL shard a serial was issued into.
  const ctx = { log, stores: { crls: { shardOf: async (serial: string) => (serial === '03' ? 2 : 0) } } } as unknown as CaContext;

  test('schedules a CRL for a change made on this host (here or by another worker), not for a polled one; stops hearing on stop()', async () => {
    const bus = new StatusBus(log);
    const crls = new Recording(ctx, bus, { validityHours: 24, coalesceMs: 60_000 });
    bus.publish({ kind: 'certificate', caId: 'before-start', serial: '01' });
    await crls.start();
    bus.publish({ kind: 'certificate', caId: 'here', serial: '02' });
    await bus.receive({ origin: 'worker', change: { kind: 'certificate', caId: 'other-worker', serial: '03' } });
    await bus.receive({ origin: 'replica', change: { kind: 'certificate', serial: '04' } });
    bus.publish({ kind: 'ca', caId: 'a-ca' });
    crls.stop();
    bus.publish({ kind: 'certificate', caId: 'after-stop', serial: '05' });
    assert.deepEqual(crls.scheduled, ['here', 'other-worker.s2']);
  });
});
