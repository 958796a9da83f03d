import pino, { type Logger } from 'pino';

/** Paths pino blanks out wherever they appear; secrets must not reach a log line. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'token',
  '*.token',
  'secret',
  '*.secret',
  'password',
  '*.password',
  'passphrase',
  '*.passphrase',
  'masterKey',
  '*.masterKey',
  'SIGNET_MASTER_KEY',
  '*.SIGNET_MASTER_KEY',
  'SIGNET_PKCS11_PIN',
  '*.SIGNET_PKCS11_PIN',
  'pin',
  '*.pin',
  'privateKey',
  '*.privateKey',
  'key',
  '*.key',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    { level, base: { service: 'signet' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, timestamp: pino.stdTimeFunctions.isoTime },
    destination ?? pino.destination(2),
  );
}
