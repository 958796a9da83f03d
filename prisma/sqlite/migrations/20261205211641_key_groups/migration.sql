-- CreateTable
CREATE TABLE "KeyGroup" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "profile" TEXT,
    "epoch" INTEGER NOT NULL DEFAULT 0,
    "height" INTEGER NOT NULL DEFAULT 0,
    "nextLeaf" INTEGER NOT NULL DEFAULT 0,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "createdBy" TEXT NOT NULL
);

-- CreateTable
CREATE TABLE "KeyGroupFreeLeaf" (
    "groupId" TEXT NOT NULL,
    "leaf" INTEGER NOT NULL,

    PRIMARY KEY ("groupId", "leaf")
);

-- CreateTable
CREATE TABLE "KeyGroupMember" (
    "groupId" TEXT NOT NULL,
    "serial" TEXT NOT NULL,
    "leaf" INTEGER NOT NULL,
    "joinedEpoch" INTEGER NOT NULL,
    "joinedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,

    PRIMARY KEY ("groupId", "serial")
);

-- CreateTable
CREATE TABLE "KeyGroupNode" (
    "groupId" TEXT NOT NULL,
    "level" INTEGER NOT NULL,
    "pos" INTEGER NOT NULL,
    "version" INTEGER NOT NULL,
    "sealed" BLOB NOT NULL,

    PRIMARY KEY ("groupId", "level", "pos")
);

-- CreateTable
CREATE TABLE "KeyGroupEpoch" (
    "groupId" TEXT NOT NULL,
    "epoch" INTEGER NOT NULL,
    "change" TEXT NOT NULL,
    "serial" TEXT NOT NULL,
    "cause" TEXT NOT NULL,
    "updates" BLOB NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,

    PRIMARY KEY ("groupId", "epoch")
);

-- CreateIndex
CREATE UNIQUE INDEX "KeyGroup_name_key" ON "KeyGroup"("name");

-- CreateIndex
CREATE INDEX "KeyGroupMember_serial_idx" ON "KeyGroupMember"("serial");

-- CreateIndex
CREATE UNIQUE INDEX "KeyGroupMember_groupId_leaf_key" ON "KeyGroupMember"("groupId", "leaf");

