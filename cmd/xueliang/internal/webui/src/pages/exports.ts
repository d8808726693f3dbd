// The exports page (#/exports).
import { stub } from './stub';

export const mount = stub('exports');
