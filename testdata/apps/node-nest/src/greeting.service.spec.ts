import { GreetingService } from './greeting.service';

const s = new GreetingService();
if (!s.greet('x').startsWith('hello x')) throw new Error('greeting');
