// Brokers for tests: the starters live in sim/brokers.ts (the simulator and
// benchmarks use them too); the vitest-only helper lives here.
import { describe, it } from 'vitest';
import { mosquittoAvailable, rabbitmqAvailable } from '../../sim/brokers.js';

export * from '../../sim/brokers.js';

/**
 * describe() for suites that need mosquitto. Locally, when it is missing, the
 * suite is skipped with a visible warning; in CI (CI=true) it fails instead,
 * so a broken CI image cannot pass silently.
 */
export function describeMosquitto(name: string, fn: () => void): void {
  if (mosquittoAvailable()) {
    describe(name, fn);
  } else if (process.env.CI === 'true') {
    describe(name, () => {
      it('needs mosquitto', () => {
        throw new Error('mosquitto is not installed (looked at /usr/sbin/mosquitto and PATH); CI must provide it');
      });
    });
  } else {
    console.warn(`[dormouse tests] SKIPPED "${name}": mosquitto is not installed (apt-get install mosquitto)`);
    describe.skip(name, fn);
  }
}


/** describe() for suites that need RabbitMQ (Debian's rabbitmq-server): skipped with a warning locally when missing, failed in CI. */
export function describeRabbitMQ(name: string, fn: () => void): void {
  if (rabbitmqAvailable()) {
    describe(name, fn);
  } else if (process.env.CI === 'true') {
    describe(name, () => {
      it('needs RabbitMQ', () => {
        throw new Error('rabbitmq-server is not installed (looked for /usr/lib/rabbitmq/bin/rabbitmq-server); CI must provide it');
      });
    });
  } else {
    console.warn(`[dormouse tests] SKIPPED "${name}": RabbitMQ is not installed (apt-get install rabbitmq-server)`);
    describe.skip(name, fn);
  }
}
