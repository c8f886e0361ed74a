import { createHash } from "node:crypto";

/** Hex sha256 of a text: how configs are compared and reported ("has it changed?"). */
export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
