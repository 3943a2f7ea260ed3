import denoJson from "../../deno.json" with { type: "json" };

/** upcase's version, as deno.json gives it. */
export const VERSION: string = denoJson.version;
