/** `static_configs` entries. */
import { describe, type Problems, parseLabelMap, unknownKeys } from "../config-fields.ts";
import type { Obj } from "../go-yaml.ts";
import { ADDRESS, type Labels } from "../labels.ts";
import type { TargetGroup } from "../target-group.ts";
import type { PromDialect } from "../version.ts";

/** A static_configs entry is one target group: `targets` become `__address__`, plus shared `labels`. */
export function parseStaticGroup(
  item: Obj,
  index: number,
  dialect: PromDialect,
  path: string,
  p: Problems,
): TargetGroup {
  unknownKeys(item, ["targets", "labels"], path, p);
  const labels = parseLabelMap(item.labels, dialect, `${path}.labels`, p);
  const targets: Labels[] = [];
  const raw = item.targets;
  if (raw !== undefined && raw !== null) {
    if (!Array.isArray(raw)) p.add(`${path}.targets`, `must be a list of host:port strings, got ${describe(raw)}`);
    else
      raw.forEach((t, i) => {
        if (typeof t !== "string" && typeof t !== "number") {
          p.add(`${path}.targets[${i}]`, `must be a host:port string, got ${describe(t)}`);
          return;
        }
        targets.push(Object.freeze({ [ADDRESS]: String(t) }));
      });
  }
  return { source: String(index), targets, labels };
}
