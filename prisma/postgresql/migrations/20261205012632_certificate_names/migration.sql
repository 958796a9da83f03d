-- DropIndex
DROP INDEX "Certificate_profile_createdAt_idx";

-- CreateTable
CREATE TABLE "CertificateName" (
    "key" TEXT NOT NULL,
    "serial" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "CertificateName_pkey" PRIMARY KEY ("key","createdAt","serial")
);

-- CreateIndex
CREATE INDEX "Certificate_profile_createdAt_serial_idx" ON "Certificate"("profile", "createdAt", "serial");

-- AddForeignKey
ALTER TABLE "CertificateName" ADD CONSTRAINT "CertificateName_serial_fkey" FOREIGN KEY ("serial") REFERENCES "Certificate"("serial") ON DELETE RESTRICT ON UPDATE CASCADE;


-- Written by hand: the name index for the certificates issued before it existed. The same keys
-- as nameKeys() in src/storage/certificate-names.ts (test/inventory-search.test.ts checks that
-- both derivations agree): "." + every domain at and above each DNS name, email domain and URI
-- host, and the exact value of each IP address, email address and URI, ASCII-lower-cased.
WITH RECURSIVE
  san("serial", "createdAt", "type", "v") AS (
    SELECT c."serial", c."createdAt", j.value ->> 'type', lower(j.value ->> 'value')
    FROM "Certificate" c, jsonb_array_elements(c."sans"::jsonb) j
  ),
  host("serial", "createdAt", "h") AS (
    SELECT "serial", "createdAt", CASE WHEN "hp" LIKE '[%' THEN '' ELSE split_part("hp", ':', 1) END
    FROM (SELECT "serial", "createdAt", regexp_replace(substring(substr("v", strpos("v", '://') + 3) from '^[^/?#]*'), '^.*@', '') AS "hp"
          FROM san WHERE "type" = 'uri' AND strpos("v", '://') > 0) a
  ),
  origin("serial", "createdAt", "d") AS (
    SELECT "serial", "createdAt", "v" FROM san WHERE "type" = 'dns'
    UNION ALL SELECT "serial", "createdAt", regexp_replace("v", '^.*@', '') FROM san WHERE "type" = 'email'
    UNION ALL SELECT "serial", "createdAt", "h" FROM host WHERE "h" ~ '[^0-9.]'
  ),
  up("serial", "createdAt", "d") AS (
    SELECT "serial", "createdAt", "d" FROM origin
    UNION ALL SELECT "serial", "createdAt", substr("d", strpos("d", '.') + 1) FROM up WHERE strpos("d", '.') > 0
  )
INSERT INTO "CertificateName" ("key", "serial", "createdAt")
SELECT '.' || "d", "serial", "createdAt" FROM up WHERE "d" <> ''
UNION ALL SELECT "v", "serial", "createdAt" FROM san WHERE "type" IN ('ip', 'email', 'uri')
ON CONFLICT DO NOTHING;
