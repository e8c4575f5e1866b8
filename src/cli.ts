import { buildCli, checkCommand, fail } from "./cli/program.js";

const cli = buildCli();
try {
  checkCommand(cli, process.argv);
} catch (err) {
  fail(err);
}
cli.parseAsync(process.argv).catch(fail);
