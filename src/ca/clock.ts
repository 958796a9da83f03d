/**
 * The wall clock of the CA. Everything in ca/ takes the time from its context (CaContext.now)
 * or from the clock it was given; this is the one place that reads the system's, so a test can
 * hand any of them another.
 */
export type Clock = () => Date;

export const systemClock: Clock = () => new Date();
