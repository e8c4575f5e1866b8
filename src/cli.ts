import { buildCli, fail } from "./cli/program.js";

buildCli().parseAsync(process.argv).catch(fail);
