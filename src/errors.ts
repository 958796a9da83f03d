/**
 * The one error type that crosses Signet. It carries RFC 9457 problem fields; only the HTTP
 * adapter turns it into a response, and the CLI prints its detail as one line.
 */
export type ProblemType =
  | 'bad-request'
  | 'bad-csr'
  | 'bad-key'
  | 'rejected-name'
  | 'policy'
  | 'not-found'
  | 'conflict'
  | 'unauthorized'
  | 'forbidden'
  | 'payload-too-large'
  | 'unsupported-media-type'
  | 'rate-limited'
  | 'unavailable'
  | 'configuration'
  | 'key-store'
  | 'lint-failure'
  | 'internal';

const TITLES: Record<ProblemType, [number, string]> = {
  'bad-request': [400, 'Bad request'],
  'bad-csr': [400, 'Bad certificate signing request'],
  'bad-key': [400, 'Unsupported or weak key'],
  'rejected-name': [400, 'Name not allowed'],
  policy: [400, 'Refused by policy'],
  'not-found': [404, 'Not found'],
  conflict: [409, 'Conflict'],
  unauthorized: [401, 'Unauthorized'],
  forbidden: [403, 'Forbidden'],
  'payload-too-large': [413, 'Payload too large'],
  'unsupported-media-type': [415, 'Unsupported media type'],
  'rate-limited': [429, 'Too many requests'],
  unavailable: [503, 'Service unavailable'],
  configuration: [500, 'Configuration error'],
  'key-store': [500, 'Key store error'],
  'lint-failure': [500, 'Certificate failed pre-issuance lint'],
  internal: [500, 'Internal error'],
};

export const PROBLEM_BASE = 'https://signet.dev/problems/';

export class SignetError extends Error {
  readonly type: ProblemType;
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly extra?: Record<string, unknown>;
  /** ACME (RFC 8555 §6.7) error name, e.g. 'badNonce'; ACME endpoints answer with urn:ietf:params:acme:error:<name>. */
  readonly acme?: string;

  constructor(type: ProblemType, detail: string, options: { status?: number; extra?: Record<string, unknown>; cause?: unknown; acme?: string } = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    const [status, title] = TITLES[type];
    this.name = 'SignetError';
    this.type = type;
    this.status = options.status ?? status;
    this.title = title;
    this.detail = detail;
    this.extra = options.extra;
    this.acme = options.acme;
  }

  toProblem(instance?: string): Record<string, unknown> {
    return {
      type: PROBLEM_BASE + this.type,
      title: this.title,
      status: this.status,
      detail: this.detail,
      ...(instance ? { instance } : {}),
      ...this.extra,
    };
  }
}

export const isSignetError = (e: unknown): e is SignetError => e instanceof SignetError;
