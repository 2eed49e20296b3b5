import { Injectable } from '@nestjs/common';

@Injectable()
export class GreetingService {
  greet(name: string): string {
    return `hello ${name} from node-nest on node ${process.version}\n`;
  }
}
