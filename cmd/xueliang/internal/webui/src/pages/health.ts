// The health page (#/health).
import { stub } from './stub';

export const mount = stub('health');
