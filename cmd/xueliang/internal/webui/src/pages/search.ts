// The search page (#/search).
import { stub } from './stub';

export const mount = stub('search');
