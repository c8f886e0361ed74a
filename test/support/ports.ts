// The tests use the product's own helper.
export { freePort } from "../../src/util/ports.ts";
