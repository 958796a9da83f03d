-- DropIndex
DROP INDEX "Certificate_profile_createdAt_idx";

-- CreateTable
CREATE TABLE "CertificateName" (
    "key" TEXT NOT NULL,
    "serial" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL,

    PRIMARY KEY ("key", "createdAt", "serial"),
    CONSTRAINT "CertificateName_serial_fkey" FOREIGN KEY ("serial") REFERENCES "Certificate" ("serial") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateIndex
CREATE INDEX "Certificate_profile_createdAt_serial_idx" ON "Certificate"("profile", "createdAt", "serial");


-- Written by hand: the name index for the certificates issued before it existed. The same keys
-- as nameKeys() in src/storage/certificate-names.ts (test/inventory-search.test.ts checks that
-- both derivations agree): "." + every domain at and above each DNS name, email domain and URI
-- host, and the exact value of each IP address, email address and URI, ASCII-lower-cased.
-- rtrim(s, replace(s, '@', '')) is s up to its last '@'.
WITH RECURSIVE
  san("serial", "createdAt", "type", "v") AS (
    SELECT c."serial", c."createdAt", json_extract(j.value, '$.type'), lower(json_extract(j.value, '$.value'))
    FROM "Certificate" c, json_each(c."sans") j
  ),
  authority("serial", "createdAt", "a") AS (
    SELECT "serial", "createdAt", CASE instr("cut", '/') WHEN 0 THEN "rest" ELSE substr("rest", 1, instr("cut", '/') - 1) END
    FROM (SELECT "serial", "createdAt", substr("v", instr("v", '://') + 3) AS "rest", replace(replace(substr("v", instr("v", '://') + 3), '?', '/'), '#', '/') AS "cut"
          FROM san WHERE "type" = 'uri' AND instr("v", '://') > 0)
  ),
  host("serial", "createdAt", "h") AS (
    SELECT "serial", "createdAt", CASE WHEN substr("hp", 1, 1) = '[' THEN '' WHEN instr("hp", ':') = 0 THEN "hp" ELSE substr("hp", 1, instr("hp", ':') - 1) END
    FROM (SELECT "serial", "createdAt", substr("a", length(rtrim("a", replace("a", '@', ''))) + 1) AS "hp" FROM authority)
  ),
  origin("serial", "createdAt", "d") AS (
    SELECT "serial", "createdAt", "v" FROM san WHERE "type" = 'dns'
    UNION ALL SELECT "serial", "createdAt", substr("v", length(rtrim("v", replace("v", '@', ''))) + 1) FROM san WHERE "type" = 'email'
    UNION ALL SELECT "serial", "createdAt", "h" FROM host WHERE "h" GLOB '*[^0-9.]*'
  ),
  up("serial", "createdAt", "d") AS (
    SELECT "serial", "createdAt", "d" FROM origin
    UNION ALL SELECT "serial", "createdAt", substr("d", instr("d", '.') + 1) FROM up WHERE instr("d", '.') > 0
  )
INSERT OR IGNORE INTO "CertificateName" ("key", "serial", "createdAt")
SELECT '.' || "d", "serial", "createdAt" FROM up WHERE "d" <> ''
UNION ALL SELECT "v", "serial", "createdAt" FROM san WHERE "type" IN ('ip', 'email', 'uri');
