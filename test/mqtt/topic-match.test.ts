import { describe, expect, it } from 'vitest';
import { hasWildcard, isValidTopicFilter, isValidTopicName, topicMatches } from '../../modules/mqtt/topic-match.js';
import { Prng } from '../support/prng.js';

// A plain reference: split into levels and compare level by level (MQTT 5.0 4.7).
function reference(filter: string, topic: string): boolean {
  if ((filter[0] === '+' || filter[0] === '#') && topic[0] === '$') return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

describe('topic filters and names', () => {
  it('accepts the valid filters of 4.7.1', () => {
    for (const f of ['#', '+', 'a', 'sport/#', 'sport/tennis/#', '+/tennis/#', 'sport/+/player1', '+/+', '/+', '+/', '/', 'a//b', '$SYS/#']) {
      expect(isValidTopicFilter(f), f).toBe(true);
    }
  });

  it('rejects the invalid filters [MQTT-4.7.1-1] [MQTT-4.7.1-2] [MQTT-4.7.3-1] [MQTT-4.7.3-2]', () => {
    for (const f of ['', 'sport/tennis#', 'sport/tennis/#/ranking', '#/a', 'sport+', 'a/+b', '+a', 'a/b+/c', 'a\u0000b', '##']) {
      expect(isValidTopicFilter(f), JSON.stringify(f)).toBe(false);
    }
  });

  it('checks topic names [MQTT-4.7.0-1]', () => {
    expect(isValidTopicName('a/b')).toBe(true);
    expect(isValidTopicName('/')).toBe(true);
    expect(isValidTopicName('$SYS/x')).toBe(true);
    for (const t of ['', 'a/+', 'a/#', '+', 'a\u0000']) expect(isValidTopicName(t), JSON.stringify(t)).toBe(false);
  });

  it('tells wildcard filters apart', () => {
    expect(hasWildcard('a/b')).toBe(false);
    expect(hasWildcard('a/+')).toBe(true);
    expect(hasWildcard('#')).toBe(true);
  });
});

describe('topicMatches', () => {
  const cases: Array<[string, string, boolean]> = [
    // 4.7.1.2 multi-level wildcard
    ['sport/tennis/player1/#', 'sport/tennis/player1', true],
    ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true],
    ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true],
    ['sport/#', 'sport', true],
    ['#', 'a/b/c', true],
    ['#', '/', true],
    ['a/#', 'ab', false],
    ['a/#', 'b/a', false],
    // 4.7.1.3 single-level wildcard
    ['sport/tennis/+', 'sport/tennis/player1', true],
    ['sport/tennis/+', 'sport/tennis/player2', true],
    ['sport/tennis/+', 'sport/tennis/player1/ranking', false],
    ['sport/+', 'sport', false],
    ['sport/+', 'sport/', true],
    ['+/+', '/finance', true],
    ['/+', '/finance', true],
    ['+', '/finance', false],
    ['a/+/#', 'a/b', true],
    ['a/+/c', 'a//c', true],
    // exact
    ['a/b', 'a/b', true],
    ['a/b', 'a/bc', false],
    ['a/bc', 'a/b', false],
    ['a', 'a/b', false],
    ['a/b', 'A/b', false],
    // 4.7.2 $ topics [MQTT-4.7.2-1]
    ['#', '$SYS/broker/clients', false],
    ['+/monitor/Clients', '$SYS/monitor/Clients', false],
    ['$SYS/#', '$SYS/monitor/Clients', true],
    ['$SYS/monitor/+', '$SYS/monitor/Clients', true],
    ['a/#', 'a/$b', true],
  ];
  for (const [filter, topic, want] of cases) {
    it(`${filter} ${want ? 'matches' : 'does not match'} ${topic}`, () => {
      expect(topicMatches(filter, topic)).toBe(want);
      expect(reference(filter, topic)).toBe(want);
    });
  }

  it('agrees with a split-based reference on random filters and topics (seeded)', () => {
    const seed = 0x70b1c;
    const rng = new Prng(seed);
    const levels = ['a', 'b', '', '$x', 'ab'];
    let matched = 0;
    for (let i = 0; i < 20_000; i++) {
      const tn = rng.int(1, 4);
      const t: string[] = [];
      for (let j = 0; j < tn; j++) t.push(rng.pick(levels));
      const topic = t.join('/') || 'a';
      const fn = rng.int(1, 4);
      const f: string[] = [];
      for (let j = 0; j < fn; j++) {
        const r = rng.int(0, 9);
        f.push(r < 3 ? '+' : r === 3 && j === fn - 1 ? '#' : rng.pick(levels));
      }
      const filter = f.join('/') || '+';
      expect(isValidTopicFilter(filter), filter).toBe(true);
      const got = topicMatches(filter, topic);
      if (got !== reference(filter, topic)) throw new Error(`seed ${seed} step ${i}: ${filter} vs ${topic}`);
      if (got) matched++;
    }
    expect(matched).toBeGreaterThan(1000);
  });
});
