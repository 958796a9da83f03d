-- Written by hand: Prisma's schema language has no partial indexes.
-- The CRL query (one CA's revoked and held certificates, in serial order) scans this index in
-- order instead of sorting; only revoked/held rows are in it, so issuance does not pay for it.
CREATE INDEX "Certificate_crl_idx" ON "Certificate"("caId", "serial") INCLUDE ("notAfter", "revokedAt", "revocationReason", "invalidityDate") WHERE "status" IN ('revoked', 'hold');
