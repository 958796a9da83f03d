-- Written by hand: Prisma's schema language has no partial indexes.
-- The CRL query (one CA's revoked and held certificates, in serial order) reads only this
-- index: no visit to the wide certificate rows, no sort. Only revoked/held rows are in it, so
-- issuance does not pay for it.
CREATE INDEX "Certificate_crl_idx" ON "Certificate"("caId", "serial", "notAfter", "revokedAt", "revocationReason", "invalidityDate") WHERE "status" IN ('revoked', 'hold');
