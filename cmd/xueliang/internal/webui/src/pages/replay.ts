// The replay page (#/replay).
import { stub } from './stub';

export const mount = stub('replay');
