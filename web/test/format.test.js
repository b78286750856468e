// Unit tests of the dashboard's pure helpers (node:test; run by CTest as web_js_test).
import assert from 'node:assert/strict';
import test from 'node:test';

import {stepFor} from '../static/chart.js';
import {
  BAD, GOOD, UNCERTAIN, formatValue, qualityClass, qualityName, severity,
} from '../static/format.js';

test('severity follows the top two bits of the StatusCode', () => {
  assert.equal(severity(0), GOOD);
  assert.equal(severity(0x00960000), GOOD);
  assert.equal(severity(0x40900000), UNCERTAIN);
  assert.equal(severity(0x80310000), BAD);
  assert.equal(severity(0xc0000000), BAD);  // 11 is reserved: treated as Bad
  assert.equal(severity(null), GOOD);
});

test('qualities have names, or severity and hex', () => {
  assert.equal(qualityName(0), 'Good');
  assert.equal(qualityName(0x80310000), 'BadNoCommunication');
  assert.equal(qualityName(0x800a0000), 'BadTimeout');
  assert.equal(qualityName(0x80050000), 'BadCommunicationError');
  assert.equal(qualityName(0x808c0000), 'BadSensorFailure');
  assert.equal(qualityName(0x40900000), 'UncertainLastUsableValue');
  assert.equal(qualityName(0x80ab0000), 'Bad (0x80AB0000)');
  assert.equal(qualityName(0x40ab0001), 'Uncertain (0x40AB0001)');
  assert.equal(qualityClass(0x80310000), 'quality-bad');
  assert.equal(qualityClass(0x40900000), 'quality-uncertain');
  assert.equal(qualityClass(0), '');
});

test('values are formatted for reading', () => {
  assert.equal(formatValue(21.5, 'Float'), '21.5');
  assert.equal(formatValue(21.123456789, 'Double'), '21.1235');
  assert.equal(formatValue(1234567, 'Int32'), '1234567');
  assert.equal(formatValue(1, 'Boolean'), 'true');
  assert.equal(formatValue(0, 'Boolean'), 'false');
  assert.equal(formatValue('AUTO', 'String'), 'AUTO');
  assert.equal(formatValue(null, 'Float'), '—');
});

test('bucket steps are round and give at most 1000 buckets', () => {
  const hour = 3600e3;
  assert.equal(stepFor(hour), 5e3);
  assert.equal(stepFor(24 * hour), 120e3);
  assert.equal(stepFor(7 * 24 * hour), 900e3);
  for (const range of [hour, 24 * hour, 7 * 24 * hour]) {
    const buckets = range / stepFor(range);
    assert.ok(buckets >= 300 && buckets <= 1000, `${buckets} buckets`);
  }
});
