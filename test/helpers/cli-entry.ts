// Runs the CLI from source (through tsx), so CLI tests do not depend on a build.
import { main } from '../../src/main.js';

await main(process.argv);
