export interface Todo {
  id: number;
  title: string;
  done: boolean;
}

export const todos: Todo[] = [
  { id: 1, title: 'write the api', done: true },
  { id: 2, title: 'ship the image', done: false },
];
