/** What a horde counts since it started (see HordeMetrics). */
export interface Counters {
  restarts: number
  failed: number
  failovers: number
  handoffs: number
  conflicts: number
  syncRounds: number
  /** Audits of settled links this node started (see Replicator.syncRound). */
  syncAudits: number
  syncBytesSent: number
  syncBytesReceived: number
  deltaBytesSent: number
  deltaBytesReceived: number
  /** Peers' writes this node relayed to every peer (see Replicator.onRelay). */
  deltasRelayed: number
  deltasDropped: number
  nonMemberDropped: number
  deadLetters: number
  /** Children the reconciler examined (one decision each). */
  childrenExamined: number
  /** Writes not made because the record changed while the action that wanted them ran (fencing). */
  fencedWrites: number
  /** Times this node found its event loop had been blocked and re-validated its view. */
  stalls: number
  /** Planned moves whose state was larger than `maxValueBytes` and was not carried. */
  handoffStatesDropped: number
  /** Members that left that this node (as coordinator) collected: their `m/` and `s/` keys deleted. */
  membersCollected: number
  /** Replica ids this node's replica retired (see membership/collection.ts). */
  replicasRetired: number
}

export function newCounters(): Counters {
  return {
    restarts: 0,
    failed: 0,
    failovers: 0,
    handoffs: 0,
    conflicts: 0,
    syncRounds: 0,
    syncAudits: 0,
    syncBytesSent: 0,
    syncBytesReceived: 0,
    deltaBytesSent: 0,
    deltaBytesReceived: 0,
    deltasRelayed: 0,
    deltasDropped: 0,
    nonMemberDropped: 0,
    deadLetters: 0,
    fencedWrites: 0,
    childrenExamined: 0,
    stalls: 0,
    handoffStatesDropped: 0,
    membersCollected: 0,
    replicasRetired: 0,
  }
}
