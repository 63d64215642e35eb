/** The `yaml` package, imported dynamically through this module so its chunk is named `yaml`. */
export { parse, stringify } from 'yaml';
