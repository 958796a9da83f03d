-- CreateTable
CREATE TABLE "ExpiryAlert" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "kind" TEXT NOT NULL,
    "caId" TEXT NOT NULL,
    "profile" TEXT,
    "notAfter" DATETIME NOT NULL,
    "reportedAt" DATETIME NOT NULL
);

-- CreateIndex
CREATE INDEX "ExpiryAlert_notAfter_idx" ON "ExpiryAlert"("notAfter");

-- CreateIndex
CREATE INDEX "Certificate_profile_status_notAfter_idx" ON "Certificate"("profile", "status", "notAfter");

-- CreateIndex
CREATE INDEX "Certificate_status_notAfter_idx" ON "Certificate"("status", "notAfter");

-- CreateIndex
CREATE INDEX "AcmeOrder_replaces_idx" ON "AcmeOrder"("replaces");

