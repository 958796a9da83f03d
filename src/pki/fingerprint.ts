/** `AB:CD:…` form of a hex fingerprint, as openssl prints it. */
export const fingerprintColons = (hex: string): string => hex.toUpperCase().match(/../g)!.join(':');
