import { strategyNames } from "../scheduler/index.ts";
import type { Flags } from "./command.ts";

/** How targets are packed into shards: the coordinators' flags, and `promshard plan`'s what-ifs. */
export const budgetFlags: Flags = {
  "shard.max-series": {
    type: "string",
    description: "Series budget of one shard",
    default: "30000",
    placeholder: "N",
    formerly: "max-series",
  },
  scheduler: {
    type: "string",
    description: `Scheduler: ${strategyNames().join(", ")}`,
    default: "series-balanced",
    placeholder: "NAME",
  },
  "shards.min": {
    type: "string",
    description: "Fewest shards",
    default: "1",
    placeholder: "N",
    formerly: "min-shards",
  },
  "shards.max": { type: "string", description: "Most shards", default: "16", placeholder: "N", formerly: "max-shards" },
};
