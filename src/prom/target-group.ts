import type { Labels } from "./labels.ts";

/** What service discovery hands over: targets (each at least `__address__`) sharing group labels. */
export interface TargetGroup {
  /** Unique per provider; an update with the same source replaces the group. */
  readonly source: string;
  readonly targets: readonly Labels[];
  readonly labels: Labels;
}
