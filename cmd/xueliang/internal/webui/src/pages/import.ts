// The import page (#/import).
import { stub } from './stub';

export const mount = stub('import');
