// Importing a strategy registers it; this file is the list of what ships.
import "./series-balanced.ts";
import "./consistent-hash.ts";

export * from "./split.ts";
export * from "./strategy.ts";
