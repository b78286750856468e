// Formatting of values, qualities and times for display. Pure functions, no DOM.

// Names of the common OPC UA StatusCodes, as in src/contract/quality.h.
const QUALITY_NAMES = new Map([
  [0x00000000, 'Good'],
  [0x00960000, 'GoodLocalOverride'],
  [0x00300000, 'GoodClamped'],
  [0x00a50000, 'GoodNoData'],
  [0x40000000, 'Uncertain'],
  [0x40900000, 'UncertainLastUsableValue'],
  [0x408f0000, 'UncertainNoCommunicationLastUsableValue'],
  [0x40910000, 'UncertainSubstituteValue'],
  [0x40920000, 'UncertainInitialValue'],
  [0x40930000, 'UncertainSensorNotAccurate'],
  [0x40940000, 'UncertainEngineeringUnitsExceeded'],
  [0x40950000, 'UncertainSubNormal'],
  [0x80000000, 'Bad'],
  [0x80010000, 'BadUnexpectedError'],
  [0x80020000, 'BadInternalError'],
  [0x80040000, 'BadResourceUnavailable'],
  [0x80050000, 'BadCommunicationError'],
  [0x80060000, 'BadEncodingError'],
  [0x80070000, 'BadDecodingError'],
  [0x800a0000, 'BadTimeout'],
  [0x800c0000, 'BadShutdown'],
  [0x80310000, 'BadNoCommunication'],
  [0x80320000, 'BadWaitingForInitialData'],
  [0x80340000, 'BadNodeIdUnknown'],
  [0x803a0000, 'BadNotReadable'],
  [0x803b0000, 'BadNotWritable'],
  [0x803c0000, 'BadOutOfRange'],
  [0x803d0000, 'BadNotSupported'],
  [0x80740000, 'BadTypeMismatch'],
  [0x80890000, 'BadConfigurationError'],
  [0x808a0000, 'BadNotConnected'],
  [0x808b0000, 'BadDeviceFailure'],
  [0x808c0000, 'BadSensorFailure'],
  [0x808d0000, 'BadOutOfService'],
  [0x80ae0000, 'BadConnectionClosed'],
]);

export const GOOD = 0;
export const UNCERTAIN = 1;
export const BAD = 2;
const SEVERITY_NAMES = ['Good', 'Uncertain', 'Bad'];

// The severity of StatusCode `q`: the top two bits, 0 Good, 1 Uncertain, 2 or 3 Bad.
// A value without a quality counts as Good.
export function severity(q) {
  if (q == null) return GOOD;
  return Math.min(q >>> 30, BAD);
}

export function qualityHex(q) {
  return '0x' + (q >>> 0).toString(16).toUpperCase().padStart(8, '0');
}

// "Good", "BadNoCommunication", or for a code without a name "Bad (0x80AB0000)".
export function qualityName(q) {
  if (q == null) return '';
  const name = QUALITY_NAMES.get(q >>> 0);
  return name ?? `${SEVERITY_NAMES[severity(q)]} (${qualityHex(q)})`;
}

// CSS class of a row by severity ('' for Good).
export function qualityClass(q) {
  return ['', 'quality-uncertain', 'quality-bad'][severity(q)];
}

// A value as text: booleans as true/false, floats to 6 significant digits, null as a dash.
export function formatValue(v, datatype) {
  if (v == null) return '—';
  if (typeof v === 'boolean') return String(v);
  if (typeof v !== 'number') return String(v);
  if (datatype === 'Boolean') return v ? 'true' : 'false';
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(6)));
}

// True when a metric's values can be drawn as a line.
export function isNumeric(datatype) {
  return !['String', 'Text', 'UUID', 'DataSet', 'Bytes', 'File', 'Template'].includes(datatype);
}

const pad = (n, width = 2) => String(n).padStart(width, '0');

// Local time "14:03:07", with the date in front when it is not today. Unambiguous 24-hour
// form: operators compare these with PLC and log timestamps.
export function formatTime(t) {
  if (t == null) return '';
  const d = new Date(t);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (d.toDateString() === new Date().toDateString()) return time;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

// Full local timestamp with milliseconds, for tooltips.
export function formatTimeFull(t) {
  if (t == null) return '';
  const d = new Date(t);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}
