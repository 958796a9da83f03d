import { SignetError } from '../errors.js';

/** Serials are accepted with or without colons, any case; stored as lower-case hex. */
export function normalizeSerial(serial: string): string {
  const s = serial.replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{1,64}$/.test(s)) throw new SignetError('bad-request', `serial ${JSON.stringify(serial.slice(0, 80))} is not a hexadecimal serial number`);
  return s;
}
